"""The produce and fetch hot paths with a real client (confluent-kafka) over a real socket:
large batches (frames received into pooled buffers, appended with one `pwritev`,
fetched with `sendfile`), LogAppendTime stamping on the way to the file, and a fetcher
that vanishes in the middle of a large response."""

from __future__ import annotations

import socket
from typing import Any

import trio

from protocol import frames
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.records import build_batch
from tests.clients.conftest import in_thread

RECORDS = 30_000


def produce_big_batches(bootstrap: str, topic: str, n: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50,
                         "batch.size": 1_000_000, "acks": 1})
    for i in range(n):
        producer.produce(topic, value=b"%08d" % i + b"v" * 92)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def consume_all(bootstrap: str, topic: str, n: int) -> list[Any]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "hotpath",
                         "enable.auto.commit": False, "check.crcs": True,
                         "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[Any] = []
    try:
        while len(out) < n:
            messages = consumer.consume(num_messages=n - len(out), timeout=30)
            assert messages, f"stalled after {len(out)} records"
            for m in messages:
                assert m.error() is None, m.error()
                out.append((m.offset(), m.value(), m.timestamp()))
    finally:
        consumer.close()
    return out


async def test_large_batches_round_trip_through_the_hot_paths(broker: Any) -> None:
    broker.broker.topics.create("big", 1)
    await in_thread(produce_big_batches, broker.bootstrap, "big", RECORDS)
    plog = broker.broker.topics.log("big", 0)
    sizes = [h.batch_length for _, h in plog.active_segment.iter_headers()]
    assert max(sizes) > 64 * 1024  # librdkafka sent frames larger than the small-frame path
    got = await in_thread(consume_all, broker.bootstrap, "big", RECORDS)
    assert [o for o, _, _ in got] == list(range(RECORDS))
    assert [v[:8] for _, v, _ in got] == [b"%08d" % i for i in range(RECORDS)]


async def test_log_append_time_is_stamped_with_a_valid_crc(broker: Any) -> None:
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME

    broker.broker.topics.create("lat", 1, {"message.timestamp.type": "LogAppendTime"})
    await in_thread(produce_big_batches, broker.bootstrap, "lat", 2000)
    got = await in_thread(consume_all, broker.bootstrap, "lat", 2000)  # check.crcs on
    assert {ts_type for _, _, (ts_type, _) in got} == {TIMESTAMP_LOG_APPEND_TIME}
    assert len({v for _, v, _ in got}) == 2000


async def test_a_fetcher_vanishing_mid_response_ends_only_its_connection(broker: Any) -> None:
    """The broker is blocked sending a multi-megabyte fetch response when the client resets
    the connection: that connection ends, the broker keeps serving a real client."""
    broker.broker.topics.create("gone", 1)
    plog = broker.broker.topics.log("gone", 0)
    value = b"x" * 100_000
    for _ in range(80):  # 8 MB
        plog.append(build_batch([(None, value)] * 10))
    request = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=64 << 20,
        topics=[FetchTopic(topic="gone", partitions=[FetchPartition(
            partition=0, fetch_offset=0, partition_max_bytes=64 << 20)])])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((broker.host, broker.port))
    raw.sendall(frames.join_chunks(frames.encode_request(1, 12, 1, "gone", request)))
    while broker.broker.metrics.connections.labels("PLAINTEXT")._value.get() < 1:
        await trio.sleep(0.01)
    await trio.sleep(0.2)  # the broker fills the socket and waits for it to drain
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()  # RST: the broker's next write fails with ECONNRESET/EPIPE
    await trio.sleep(0.2)
    broker.broker.topics.create("after", 1)
    await in_thread(produce_big_batches, broker.bootstrap, "after", 100)
    got = await in_thread(consume_all, broker.bootstrap, "after", 100)
    assert len(got) == 100


def produce_sizes_after_config_changes(bootstrap: str) -> list[str]:
    """Set the topic's max.message.bytes with the admin API, produce one 5,000-byte record
    after each change, and return the delivery outcomes."""
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0,
                         "message.send.max.retries": 0})
    outcomes: list[str] = []

    def deliver(err: Any, _msg: Any) -> None:
        outcomes.append("ok" if err is None else (
            "too large" if err.code() == KafkaError.MSG_SIZE_TOO_LARGE else str(err)))

    for limit in ("2000", "100000", "3000"):
        for future in admin.incremental_alter_configs([ConfigResource(
                ResourceType.TOPIC, "cfg", incremental_configs=[ConfigEntry(
                    "max.message.bytes", limit,
                    incremental_operation=AlterConfigOpType.SET)])]).values():
            future.result(30)
        producer.produce("cfg", value=b"v" * 5000, on_delivery=deliver)
        assert producer.flush(30) == 0
    return outcomes


async def test_produce_follows_topic_config_changes(broker: Any) -> None:
    """The produce path checks against the log's own config, which config changes keep
    current (it no longer re-reads the topic's overrides per request)."""
    broker.broker.topics.create("cfg", 1, {"retention.ms": "3600000"})
    outcomes = await in_thread(produce_sizes_after_config_changes, broker.bootstrap)
    assert outcomes == ["too large", "ok", "too large"]
