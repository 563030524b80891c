"""Real consumers against the broker: Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords.

kafka-python, confluent-kafka (librdkafka) and aiokafka consume with `assign()` (no group
APIs), from data appended through storage in every codec; they look offsets up by time and
watermark, delete records, and one waits in long poll until an append wakes it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import trio

from broker.handlers import REGISTRY
from protocol.records import Compression, build_batch

T0 = 1_700_000_000_000
CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4,
          Compression.ZSTD]
#: Each codec's batch: 3 records with keys, values, a header and timestamps T0+i*10.
EXPECTED = [(f"k{c}-{i}".encode(), f"v{c}-{i}".encode() * 20, T0 + (3 * n + i) * 10)
            for n, c in enumerate(CODECS) for i in range(3)]


def seed(running: Any, topic: str = "t", partitions: int = 1) -> None:
    running.broker.topics.create(topic, partitions)
    log = running.broker.topics.log(topic, 0)
    for n, codec in enumerate(CODECS):
        records = [EXPECTED[3 * n + i][:2] + ([("h", b"x")], EXPECTED[3 * n + i][2])
                   for i in range(3)]
        log.append(build_batch(records, compression=codec))


def append(running: Any, topic: str, partition: int, value: bytes) -> None:
    running.broker.topics.log(topic, partition).append(build_batch([(b"late", value)]))
    running.broker.waiters.notify(topic, partition)


async def wait_until_parked(running: Any) -> None:
    while running.broker.waiters.parked == 0:
        await trio.sleep(0.005)


@pytest.fixture
def calls(broker, monkeypatch) -> dict[int, list[int]]:
    """Versions of each request the broker served, by api key (after the broker loaded
    every handler)."""
    seen: dict[int, list[int]] = {}
    for key, registration in list(REGISTRY.items()):
        func = registration.func

        def spy(ctx: Any, request: Any, _func: Any = func) -> Any:
            seen.setdefault(ctx.api_key, []).append(ctx.api_version)
            return _func(ctx, request)

        wrapped = type(registration)(registration.api_key, registration.min_version,
                                     registration.max_version, spy, False)
        if registration.is_async:
            async def aspy(ctx: Any, request: Any, _func: Any = func) -> Any:
                seen.setdefault(ctx.api_key, []).append(ctx.api_version)
                return await _func(ctx, request)

            wrapped = type(registration)(registration.api_key, registration.min_version,
                                         registration.max_version, aspy, True)
        monkeypatch.setitem(REGISTRY, key, wrapped)
    return seen


# ----------------------------------------------------------------------------- kafka-python


def kafka_python_consume(bootstrap: str) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition("t", 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, request_timeout_ms=30000, fetch_max_wait_ms=100)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[tuple[bytes, bytes, int, list[Any]]] = []
        deadline = time.monotonic() + 30
        while len(got) < len(EXPECTED) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.key, r.value, r.timestamp, list(r.headers)) for r in records]
        consumer.seek(tp, 7)
        after_seek = []
        while not after_seek and time.monotonic() < deadline:
            after_seek = [r.offset for rs in consumer.poll(timeout_ms=500).values() for r in rs]
        return {
            "records": got,
            "after_seek": after_seek,
            "beginning": consumer.beginning_offsets([tp])[tp],
            "end": consumer.end_offsets([tp])[tp],
            "by_time": consumer.offsets_for_times({tp: T0 + 35})[tp],
            "late": consumer.offsets_for_times({tp: T0 + 10**6})[tp],
        }
    finally:
        consumer.close()


async def test_kafka_python_consumes_every_codec(broker, calls) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(kafka_python_consume, broker.bootstrap)
    assert [(k, v, ts) for k, v, ts, _ in result["records"]] == EXPECTED
    assert all(h == [("h", b"x")] for *_, h in result["records"])
    assert result["after_seek"][0] == 7
    assert (result["beginning"], result["end"]) == (0, 15)
    assert (result["by_time"].offset, result["by_time"].timestamp) == (4, T0 + 40)
    assert result["late"] is None
    # kafka-python uses Fetch v12, ListOffsets v11 and incremental fetch sessions.
    assert (set(calls[1]), set(calls[2])) == ({12}, {11})
    sessions = [s for shard in broker.broker.fetch_sessions.shards
                for s in shard.sessions.values()]
    assert any(s.epoch > 1 for s in sessions)  # at least one incremental fetch served


def kafka_python_delete(bootstrap: str) -> Any:
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        return admin.delete_records({TopicPartition("t", 0): 6})
    finally:
        admin.close()


async def test_kafka_python_delete_records(broker, calls) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(kafka_python_delete, broker.bootstrap)
    [(tp, info)] = result.items()
    assert (tp.topic, tp.partition) == ("t", 0)
    assert info["low_watermark"] == 6
    assert broker.broker.topics.log("t", 0).log_start_offset == 6
    assert set(calls[21]) == {2}


def kafka_python_long_poll(bootstrap: str) -> tuple[list[bytes], float]:
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition("t", 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, request_timeout_ms=120_000,
                             fetch_max_wait_ms=60_000, connections_max_idle_ms=200_000)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        started = time.monotonic()
        got: list[bytes] = []
        while not got and time.monotonic() - started < 40:
            got = [r.value for rs in consumer.poll(timeout_ms=1000).values() for r in rs]
        return got, time.monotonic() - started
    finally:
        consumer.close()


async def test_kafka_python_long_poll_wakes_on_append(broker, nursery) -> None:
    broker.broker.topics.create("t", 1)
    result: list[Any] = []

    async def consume() -> None:
        result.append(await trio.to_thread.run_sync(kafka_python_long_poll, broker.bootstrap))

    nursery.start_soon(consume)
    await wait_until_parked(broker)
    append(broker, "t", 0, b"wake up")
    while not result:
        await trio.sleep(0.01)
    values, elapsed = result[0]
    assert values == [b"wake up"]
    # Woken by the append, not by the 60 s fetch.max.wait.ms.
    assert elapsed < 40


# --------------------------------------------------------------------------- confluent-kafka


def confluent_consume(bootstrap: str) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-assign",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "enable.auto.offset.store": False})
    try:
        consumer.assign([TopicPartition("t", 0, OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(EXPECTED) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append((msg.key(), msg.value(), msg.timestamp()[1], msg.headers(),
                        msg.leader_epoch()))
        watermarks = consumer.get_watermark_offsets(TopicPartition("t", 0), timeout=30)
        by_time = consumer.offsets_for_times([TopicPartition("t", 0, T0 + 35)], timeout=30)
        return {"records": got, "watermarks": watermarks, "by_time": by_time[0].offset,
                "validated": confluent_validate(bootstrap)}
    finally:
        consumer.close()


def confluent_validate(bootstrap: str) -> int | None:
    """Assigning a position with a leader epoch makes librdkafka validate it with
    OffsetForLeaderEpoch once metadata names the leader (KIP-320), then fetch."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-assign",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition("t", 0, 12, leader_epoch=0)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                return int(msg.offset())
        return None
    finally:
        consumer.close()


async def test_confluent_consumes_every_codec(broker, calls) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(confluent_consume, broker.bootstrap)
    assert [(k, v, ts) for k, v, ts, _, _ in result["records"]] == EXPECTED
    assert all(h == [("h", b"x")] for _, _, _, h, _ in result["records"])
    assert all(epoch == 0 for *_, epoch in result["records"])
    assert result["watermarks"] == (0, 15)
    assert result["by_time"] == 4
    assert result["validated"] == 12
    # librdkafka: Fetch v16 (topic ids), ListOffsets v7, OffsetForLeaderEpoch v2.
    assert (set(calls[1]), set(calls[2]), set(calls[23])) == ({16}, {7}, {2})


def confluent_delete(bootstrap: str) -> Any:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition("t", 0, 9)], request_timeout=30)
    return [f.result(timeout=30) for f in futures.values()]


async def test_confluent_delete_records(broker, calls) -> None:
    seed(broker)
    [deleted] = await trio.to_thread.run_sync(confluent_delete, broker.bootstrap)
    assert deleted.low_watermark == 9
    assert broker.broker.topics.log("t", 0).log_start_offset == 9
    assert set(calls[21]) == {2}


# ---------------------------------------------------------------------------------- aiokafka


async def aiokafka_consume(bootstrap: str) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition("t", 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while len(got) < len(EXPECTED) and time.monotonic() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=500)
            got += [(m.key, m.value, m.timestamp, list(m.headers)) for m in batches.get(tp, [])]
        return {
            "records": got,
            "beginning": (await consumer.beginning_offsets([tp]))[tp],
            "end": (await consumer.end_offsets([tp]))[tp],
            "by_time": (await consumer.offsets_for_times({tp: T0 + 35}))[tp],
        }
    finally:
        await consumer.stop()


async def test_aiokafka_consumes_every_codec(broker, calls) -> None:
    seed(broker)
    result = await trio.to_thread.run_sync(asyncio.run, aiokafka_consume(broker.bootstrap))
    assert [(k, v, ts) for k, v, ts, _ in result["records"]] == EXPECTED
    assert all(h == [("h", b"x")] for *_, h in result["records"])
    assert (result["beginning"], result["end"]) == (0, 15)
    assert (result["by_time"].offset, result["by_time"].timestamp) == (4, T0 + 40)
    assert (set(calls[1]), set(calls[2])) == ({11}, {3})


def confluent_long_poll(bootstrap: str) -> tuple[list[bytes], float]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-assign",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 30_000})
    try:
        consumer.assign([TopicPartition("t", 0, 0)])
        started = time.monotonic()
        got: list[bytes] = []
        while not got and time.monotonic() - started < 25:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value())
        return got, time.monotonic() - started
    finally:
        consumer.close()


async def test_confluent_long_poll_wakes_on_append(broker, nursery) -> None:
    broker.broker.topics.create("t", 1)
    result: list[Any] = []

    async def consume() -> None:
        result.append(await trio.to_thread.run_sync(confluent_long_poll, broker.bootstrap))

    nursery.start_soon(consume)
    await wait_until_parked(broker)
    append(broker, "t", 0, b"wake up")
    while not result:
        await trio.sleep(0.01)
    # Polling gives up after 25 s, before the 30 s fetch.wait.max.ms: only the append's
    # wake-up can have delivered the record.
    assert result[0][0] == [b"wake up"]
