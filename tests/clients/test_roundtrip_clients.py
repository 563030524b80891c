"""Cross-client round trip: what each real producer writes, each real consumer reads back.

kafka-python, confluent-kafka (librdkafka) and aiokafka each produce the same records
(keys, a null key, headers - repeated and empty ones too -, explicit timestamps, a null
value, an empty value and one record whose batch is just under `message.max.bytes`) with
each codec; one topic per codec, one partition per producing client. Then each client
consumes every partition of every topic with `assign()` from the beginning (no group APIs)
and must see identical keys, values, headers, timestamps and offsets.

Client defaults are kept except where a client's own limit is below what the test sends:
librdkafka's `message.max.bytes` (1000000) is raised to the broker's 1048588.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
import trio

from broker.handlers import REGISTRY
from protocol.records import Compression, iter_batches
from tests.clients.conftest import in_asyncio, in_thread
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
             "lz4": Compression.LZ4, "zstd": Compression.ZSTD}
PRODUCERS = ["kafka-python", "confluent-kafka", "aiokafka"]  # partition = index
TS = 1_700_000_000_000
FIND_COORDINATOR = 10
MESSAGE_MAX_BYTES = 1048588  # the broker's default message.max.bytes


def big_value(size: int) -> bytes:
    """Text-like bytes: every codec shrinks them (random bytes would grow a little when
    compressed, and the compressed batch is what message.max.bytes limits)."""
    rng = random.Random(7)
    words = [bytes(rng.choices(b"abcdefghij", k=rng.randint(3, 9))) for _ in range(2000)]
    return b" ".join(rng.choices(words, k=size // 4))[:size]


#: The big record's value: its batch (61-byte header + record framing) stays under
#: 1048576, the clients' default max.request.size, and so under message.max.bytes.
BIG = big_value(1048576 - 200)

Headers = list[tuple[str, bytes]]
MESSAGES: list[tuple[bytes | None, bytes | None, Headers, int]] = [
    (b"key-0", b"value-0", [("h1", b"one"), ("h2", b"")], TS),
    (None, b"no key", [], TS + 1),
    (b"null-value", None, [("only", b"header")], TS + 2),
    (b"empty-value", b"", [], TS + 3),
    (b"repeated", b"r" * 500, [("h", b"1"), ("h", b"2"), ("h", b"1")], TS - 86_400_000),
    (b"big", BIG, [("size", b"%d" % len(BIG))], TS + 5),
]


def topic(codec: str) -> str:
    return f"rt-{codec}"


#: What every consumer must see: (topic, partition) -> [(offset, key, value, headers, ts)].
EXPECTED = {(topic(codec), partition): [(offset, k, v, h, ts)
                                        for offset, (k, v, h, ts) in enumerate(MESSAGES)]
            for codec in CODECS for partition in range(len(PRODUCERS))}
TOTAL = sum(len(records) for records in EXPECTED.values())


def expected_codec(client: str, codec: str) -> Compression:
    """The codec a client's batches carry. librdkafka enables LZ4 only when the broker
    advertises FindCoordinator v0 (its `RD_KAFKA_FEATURE_LZ4` stands for "a 0.8.2+ broker",
    rdkafka_feature.c); without it, it silently sends lz4 batches uncompressed. Kafka 4.4
    advertises FindCoordinator 0-6."""
    find_coordinator = REGISTRY.get(FIND_COORDINATOR)
    if (client == "confluent-kafka" and codec == "lz4"
            and (find_coordinator is None or find_coordinator.min_version > 0)):
        return Compression.NONE
    return CODEC_IDS[codec]


# ------------------------------------------------------------------------------- producers


def kafka_python_produce(bootstrap: str) -> list[int]:
    from kafka import KafkaProducer

    offsets = []
    for codec in CODECS:
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                 compression_type=None if codec == "none" else codec)
        try:
            futures = [producer.send(topic(codec), partition=0, key=k, value=v, headers=h,
                                     timestamp_ms=ts) for k, v, h, ts in MESSAGES]
            producer.flush(60)
            offsets += [f.get(timeout=60).offset for f in futures]
        finally:
            producer.close(10)
    return offsets


def confluent_produce(bootstrap: str) -> list[int]:
    from confluent_kafka import KafkaException, Producer

    offsets: list[int] = []
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                             "linger.ms": 20, "message.max.bytes": MESSAGE_MAX_BYTES})
        reports: list[Any] = []

        def report(err: Any, msg: Any, reports: list[Any] = reports) -> None:
            if err is not None:
                raise KafkaException(err)
            reports.append(msg.offset())

        for k, v, h, ts in MESSAGES:
            producer.produce(topic(codec), partition=1, key=k, value=v, headers=list(h),
                             timestamp=ts, on_delivery=report)
        assert producer.flush(60) == 0
        offsets += reports
    return offsets


async def aiokafka_produce(bootstrap: str) -> list[int]:
    from aiokafka import AIOKafkaProducer

    async def one(codec: str) -> list[int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                    compression_type=None if codec == "none" else codec)
        await producer.start()
        try:
            futures = [await producer.send(topic(codec), partition=2, key=k, value=v,
                                           headers=h, timestamp_ms=ts)
                       for k, v, h, ts in MESSAGES]
            return [(await f).offset for f in futures]
        finally:
            await producer.stop()

    return [offset for offsets in await asyncio.gather(*map(one, CODECS))
            for offset in offsets]


# ------------------------------------------------------------------------------- consumers

Seen = dict[tuple[str, int], list[tuple[int, Any, Any, Headers, int]]]


def add(seen: Seen, topic: Any, partition: Any, offset: Any, key: Any, value: Any,
        headers: Any, timestamp: int) -> None:
    seen.setdefault((topic, partition), []).append(
        (offset, key, value, [(k, v) for k, v in headers or []], timestamp))


def kafka_python_consume(bootstrap: str) -> tuple[Seen, set[int]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    seen: Seen = {}
    types = set()
    try:
        consumer.assign([TopicPartition(t, p) for t, p in EXPECTED])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 60
        count = 0
        while count < TOTAL and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    add(seen, r.topic, r.partition, r.offset, r.key, r.value, r.headers,
                        r.timestamp)
                    types.add(r.timestamp_type)
                    count += 1
        return seen, types
    finally:
        consumer.close()


def confluent_consume(bootstrap: str) -> tuple[Seen, set[int]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-roundtrip",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    seen: Seen = {}
    types = set()
    try:
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in EXPECTED])
        deadline = time.monotonic() + 60
        count = 0
        while count < TOTAL and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            kind, timestamp = msg.timestamp()
            add(seen, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                msg.headers(), timestamp)
            types.add(kind)
            count += 1
        return seen, types
    finally:
        consumer.close()


async def aiokafka_consume(bootstrap: str) -> tuple[Seen, set[int]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    seen: Seen = {}
    types = set()
    try:
        consumer.assign([TopicPartition(t, p) for t, p in EXPECTED])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + 60
        count = 0
        while count < TOTAL and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    add(seen, r.topic, r.partition, r.offset, r.key, r.value, r.headers,
                        r.timestamp)
                    types.add(r.timestamp_type)
                    count += 1
        return seen, types
    finally:
        await consumer.stop()


# ----------------------------------------------------------------------------------- test


async def test_every_client_reads_what_every_client_wrote(broker: RunningBroker) -> None:
    for codec in CODECS:
        broker.broker.topics.create(topic(codec), len(PRODUCERS))

    produced: dict[str, list[int]] = {}

    async def run(name: str, call: Any) -> None:
        produced[name] = await call

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "kafka-python", in_thread(kafka_python_produce,
                                                          broker.bootstrap))
        nursery.start_soon(run, "confluent-kafka", in_thread(confluent_produce,
                                                             broker.bootstrap))
        nursery.start_soon(run, "aiokafka", in_asyncio(aiokafka_produce, broker.bootstrap))
    offsets = list(range(len(MESSAGES))) * len(CODECS)
    assert produced == {name: offsets for name in PRODUCERS}

    # The stored batches carry each topic's codec (what the producers were asked for).
    for codec in CODECS:
        for partition in range(len(PRODUCERS)):
            log = broker.broker.topics.log(topic(codec), partition)
            assert log is not None
            data = log.read_bytes(0, 1 << 30)
            client = PRODUCERS[partition]
            *small, (_, big) = iter_batches(data)
            assert big.records_count == 1 and big.compression == expected_codec(client, codec)
            # Every client sends a batch uncompressed when compressing does not shrink it
            # (librdkafka; kafka-python's and aiokafka's `_maybe_compress`): which small
            # batches that hits depends on how the client happened to batch the records.
            allowed = {expected_codec(client, codec), Compression.NONE}
            assert {h.compression for _, h in small} <= allowed, (codec, client)
    none_log = broker.broker.topics.log("rt-none", 0)
    assert none_log is not None
    none_batches = [h for _, h in iter_batches(none_log.read_bytes(0, 1 << 30))]
    biggest = max(h.batch_length + 12 for h in none_batches)
    assert MESSAGE_MAX_BYTES - 200 < biggest <= MESSAGE_MAX_BYTES

    consumed = {
        "kafka-python": await in_thread(kafka_python_consume, broker.bootstrap),
        "confluent-kafka": await in_thread(confluent_consume, broker.bootstrap),
        "aiokafka": await in_asyncio(aiokafka_consume, broker.bootstrap),
    }
    for name, (seen, timestamp_types) in consumed.items():
        for key in EXPECTED:
            assert seen.get(key) == EXPECTED[key], (name, key)
        assert seen.keys() == EXPECTED.keys(), name
        assert timestamp_types == {0 if name != "confluent-kafka" else 1}, name  # CreateTime
