"""Real consumers of many partitions, most of them without new records: the Fetch paths
that skip such partitions cheaply (`broker.handlers.fetch`, `broker.fetch_sessions`).

- confluent-kafka (librdkafka) lists every assigned partition in every Fetch, without a
  session: each answer carries every partition, the empty ones built from the logs'
  offsets without a read.
- kafka-python uses incremental fetch sessions: the session keeps each partition's log,
  and a partition with nothing new is left out of the answer without being built. Its
  session lives through a move of a partition's log to the other log dir (the session's
  log is closed by the move and looked up again), and records produced after the move
  arrive.

Records are produced with the same clients, to a few partitions of a topic of `PARTITIONS`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.clients.conftest import in_thread

PARTITIONS = 200
#: The partitions that get records; the others stay empty.
FILLED = (0, 7, 120, 199)
PER_PARTITION = 30
DEADLINE_S = 40


@pytest.fixture
def broker_config(tmp_path: Any) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": f"{tmp_path / 'd1'},{tmp_path / 'd2'}"}


def failed_fetches(running: Any) -> float:
    """Partitions of topic `many` that Fetch answered with an error, from the metrics."""
    value = running.broker.metrics.registry.get_sample_value(
        "kafka_server_brokertopicmetrics_failedfetchrequests_total", {"topic": "many"})
    return value or 0.0


def expected(tag: str, partitions: tuple[int, ...] = FILLED) -> dict[int, list[bytes]]:
    return {p: [f"{tag}-{p}-{i}".encode() for i in range(PER_PARTITION)] for p in partitions}


def confluent_produce(bootstrap: str, records: dict[int, list[bytes]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for partition, values in records.items():
        for value in values:
            producer.produce("many", value=value, partition=partition)
    assert producer.flush(30) == 0


def confluent_consume(bootstrap: str) -> dict[str, Any]:
    """Consume the first records of every partition, then the late ones produced while the
    consumer is polling at the end of every partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    seen: dict[str, Any] = {}
    try:
        consumer.assign([TopicPartition("many", p, 0) for p in range(PARTITIONS)])
        seen["first"] = _poll_confluent(consumer, sum(map(len, expected("a").values())))
        confluent_produce(bootstrap, expected("b", (3, 150)))
        seen["late"] = _poll_confluent(consumer, 2 * PER_PARTITION)
    finally:
        consumer.close()
    return seen


def _poll_confluent(consumer: Any, count: int) -> dict[int, list[bytes]]:
    got: dict[int, list[bytes]] = {}
    deadline = time.monotonic() + DEADLINE_S
    while sum(map(len, got.values())) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            got.setdefault(msg.partition(), []).append(msg.value())
    return got


async def test_confluent_consumes_many_partitions_without_a_session(broker: Any) -> None:
    broker.broker.topics.create("many", PARTITIONS)
    await in_thread(confluent_produce, broker.bootstrap, expected("a"))
    seen = await in_thread(confluent_consume, broker.bootstrap)
    assert seen["first"] == expected("a")
    assert seen["late"] == expected("b", (3, 150))
    # librdkafka fetches without a session: the broker holds none.
    assert len(broker.broker.fetch_sessions) == 0
    assert failed_fetches(broker) == 0


def kafka_python_session(bootstrap: str, log_dirs: list[str]) -> dict[str, Any]:
    """Consume in a session; produce late records; move partition 7's log to the other
    dir (its current one is `log_dirs[0]`) and produce again, all while consuming."""
    from kafka import (
        KafkaAdminClient,
        KafkaConsumer,
        KafkaProducer,
        TopicPartition,
        TopicPartitionReplica,
    )

    seen: dict[str, Any] = {}
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=100)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)

    def send(records: dict[int, list[bytes]]) -> None:
        for partition, values in records.items():
            for value in values:
                producer.send("many", value=value, partition=partition)
        producer.flush(30)

    try:
        send(expected("a"))
        consumer.assign([TopicPartition("many", p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        seen["first"] = _poll_kafka_python(consumer, len(FILLED) * PER_PARTITION)
        send(expected("b", (3, 150)))
        seen["late"] = _poll_kafka_python(consumer, 2 * PER_PARTITION)
        replica = TopicPartitionReplica("many", 7, 1)
        seen["moved"] = admin.alter_replica_log_dirs({replica: log_dirs[1]})[replica].__name__
        send(expected("c", (7,)))
        seen["after_move"] = _poll_kafka_python(consumer, PER_PARTITION)
    finally:
        consumer.close()
        producer.close(10)
        admin.close()
    return seen


def _poll_kafka_python(consumer: Any, count: int) -> dict[int, list[bytes]]:
    got: dict[int, list[bytes]] = {}
    deadline = time.monotonic() + DEADLINE_S
    while sum(map(len, got.values())) < count and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            got.setdefault(tp.partition, []).extend(r.value for r in records)
    return got


async def test_kafka_python_session_over_many_partitions_and_a_log_move(broker: Any) -> None:
    logs = broker.broker.logs
    broker.broker.topics.create("many", PARTITIONS)
    home = logs.log_dir_of("many", 7)
    other = next(d for d in logs.log_dirs if d != home)
    seen = await in_thread(kafka_python_session, broker.bootstrap, [home, other])
    assert seen["first"] == expected("a")
    assert seen["late"] == expected("b", (3, 150))
    assert seen["moved"] == "NoError" and logs.log_dir_of("many", 7) == other
    assert seen["after_move"] == expected("c", (7,))
    # The session followed the move: no partition was answered with an error meanwhile.
    assert failed_fetches(broker) == 0
    sessions = [s for shard in broker.broker.fetch_sessions.shards
                for s in shard.sessions.values()]
    # Served incrementally, the whole topic in one session.
    assert any(s.epoch > 2 and len(s.partitions) == PARTITIONS for s in sessions)
