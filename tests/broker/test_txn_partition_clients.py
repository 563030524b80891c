"""Real consumers read transactional partitions: read_committed and read_uncommitted.

The partition is written through the storage API (data batches with a producer id, and
COMMIT/ABORT markers with `append_marker`), so no transaction coordinator is involved:

    0-1 plain | 2-3 txn of producer 1 | 4 txn of producer 2 | 5 ABORT (1) | 6 plain |
    7 COMMIT (2) | 8 txn of producer 3, left open | 9 plain

The last stable offset is 8. A read_committed consumer (confluent-kafka/librdkafka,
kafka-python, aiokafka) must see p0 p1 t2 p6 and nothing else until producer 3's
transaction commits, then t3 p9; it never sees the aborted records (it drops them with the
Fetch response's aborted transactions) nor a control record. A read_uncommitted consumer
sees every data record at once, and no control record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from protocol.records import build_batch
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

T0 = 1_700_000_000_000
COMMITTED = [b"p0", b"p1", b"t2", b"p6"]
LATER = [b"t3", b"p9"]
EVERYTHING = [b"p0", b"p1", b"t1a", b"t1b", b"t2", b"p6", b"t3", b"p9"]
#: How long a consumer keeps polling to show that nothing past the LSO arrives.
QUIET_S = 1.0


def seed(running: RunningBroker) -> Callable[[], None]:
    """Write the partition; returns what commits producer 3's transaction (trio thread)."""
    running.broker.topics.create("t", 1)
    log = running.broker.topics.log("t", 0)
    assert log is not None

    def txn(pid: int, *values: bytes) -> bytes:
        return build_batch([(b"k", v, [], T0) for v in values], producer_id=pid,
                           producer_epoch=0, base_sequence=0, is_transactional=True)

    log.append(build_batch([(b"k", b"p0", [], T0), (b"k", b"p1", [], T0)]))
    log.append(txn(1, b"t1a", b"t1b"))
    log.append(txn(2, b"t2"))
    log.append_marker(1, 0, 0, commit=False, timestamp_ms=T0)
    log.append(build_batch([(b"k", b"p6", [], T0)]))
    log.append_marker(2, 0, 0, commit=True, timestamp_ms=T0)
    log.append(txn(3, b"t3"))
    log.append(build_batch([(b"k", b"p9", [], T0)]))
    assert (log.last_stable_offset, log.high_watermark) == (8, 10)

    def commit() -> None:
        log.append_marker(3, 0, 0, commit=True, timestamp_ms=T0)
        running.broker.waiters.notify("t", 0)

    return commit


def commit_from_thread(commit: Callable[[], None]) -> Callable[[], None]:
    """`commit` made callable from any thread: it runs on the broker's trio thread."""
    token = trio.lowlevel.current_trio_token()
    return lambda: trio.from_thread.run_sync(commit, trio_token=token)


def read_phases(poll: Callable[[float], list[bytes]], commit: Callable[[], None] | None,
                first: int) -> dict[str, list[bytes]]:
    """Poll until `first` values came, keep polling QUIET_S for strays, then (with
    `commit`) commit producer 3 and poll for the two values it releases."""
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    while len(got) < first and time.monotonic() < deadline:
        got += poll(0.2)
    quiet_until = time.monotonic() + QUIET_S
    while time.monotonic() < quiet_until:
        got += poll(0.1)
    result = {"before": got}
    if commit is not None:
        commit()
        later: list[bytes] = []
        while len(later) < 2 and time.monotonic() < deadline:
            later += poll(0.2)
        result["after"] = later
    return result


# --------------------------------------------------------------------------- confluent-kafka


def confluent_read(bootstrap: str, isolation: str, commit: Callable[[], None] | None,
                   first: int) -> dict[str, list[bytes]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "txn-part",
                         "enable.auto.commit": False, "isolation.level": isolation,
                         "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])

        def poll(timeout: float) -> list[bytes]:
            msg = consumer.poll(timeout)
            if msg is None or msg.error():
                return []
            value = msg.value()
            return [] if value is None else [value]

        return read_phases(poll, commit, first)
    finally:
        consumer.close()


async def test_confluent_read_committed(broker: RunningBroker) -> None:
    commit = seed(broker)
    result = await trio.to_thread.run_sync(
        confluent_read, broker.bootstrap, "read_committed", commit_from_thread(commit),
        len(COMMITTED))
    assert result == {"before": COMMITTED, "after": LATER}


async def test_confluent_read_uncommitted(broker: RunningBroker) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(
        confluent_read, broker.bootstrap, "read_uncommitted", None, len(EVERYTHING))
    assert result == {"before": EVERYTHING}


# ------------------------------------------------------------------------------ kafka-python


def kafka_python_read(bootstrap: str, isolation: str, commit: Callable[[], None] | None,
                      first: int) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition("t", 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, isolation_level=isolation,
                             fetch_max_wait_ms=100, request_timeout_ms=30000)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)

        def poll(timeout: float) -> list[bytes]:
            batches = consumer.poll(timeout_ms=int(timeout * 1000))
            return [r.value for rs in batches.values() for r in rs]

        result: dict[str, Any] = dict(read_phases(poll, commit, first))
        result["end"] = consumer.end_offsets([tp])[tp]
        return result
    finally:
        consumer.close()


async def test_kafka_python_read_committed(broker: RunningBroker) -> None:
    commit = seed(broker)
    result = await trio.to_thread.run_sync(
        kafka_python_read, broker.bootstrap, "read_committed", commit_from_thread(commit),
        len(COMMITTED))
    # end_offsets (ListOffsets LATEST, read_committed) is the LSO: 11 once all committed.
    assert result == {"before": COMMITTED, "after": LATER, "end": 11}


async def test_kafka_python_read_uncommitted(broker: RunningBroker) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(
        kafka_python_read, broker.bootstrap, "read_uncommitted", None, len(EVERYTHING))
    assert result == {"before": EVERYTHING, "end": 10}


# ----------------------------------------------------------------------------------- aiokafka


async def aiokafka_read(bootstrap: str, commit: Callable[[], None]) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition("t", 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end_before = (await consumer.end_offsets([tp]))[tp]

        async def take(count: int, quiet: float) -> list[bytes]:
            got: list[bytes] = []
            deadline = time.monotonic() + 60
            while len(got) < count and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                got += [r.value for rs in batches.values() for r in rs]
            quiet_until = time.monotonic() + quiet
            while time.monotonic() < quiet_until:
                batches = await consumer.getmany(timeout_ms=100)
                got += [r.value for rs in batches.values() for r in rs]
            return got

        before = await take(len(COMMITTED), QUIET_S)
        await asyncio.to_thread(commit)
        after = await take(len(LATER), 0)
        return {"before": before, "after": after, "end_before": end_before}
    finally:
        await consumer.stop()


async def test_aiokafka_read_committed(broker: RunningBroker) -> None:
    commit = seed(broker)
    from_thread = commit_from_thread(commit)
    result = await trio.to_thread.run_sync(
        lambda: asyncio.run(aiokafka_read(broker.bootstrap, from_thread)))
    assert result == {"before": COMMITTED, "after": LATER, "end_before": 8}
