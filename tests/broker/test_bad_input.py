"""Bad input from raw sockets while real clients are being served.

A confluent-kafka consumer sits in long poll and a kafka-python producer has produced half
its records when a crowd of raw connections sends, all at once: garbage, a size prefix
over `socket.request.max.bytes`, a negative and a zero size, a truncated frame and then a
close, an unknown API key, an unknown Fetch version, a Produce that fails to decode (each
closed, as Apache Kafka 4.4 does, with one log line naming the peer), and well-formed
requests Kafka answers with an error code - a batch with a bad CRC (CORRUPT_MESSAGE),
batches whose record count is off (INVALID_RECORD), an unknown topic and partition
(UNKNOWN_TOPIC_OR_PARTITION), a fetch out of range (OFFSET_OUT_OF_RANGE) - after which
those connections keep working. Then the producer finishes and the consumer gets every
record, in order.

The answers were compared with Kafka 4.4 for the same bytes (error codes, base offset -1,
log start offset 0 for INVALID_RECORD and -1 otherwise, no error message; each framing
case: connection closed without an answer).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from typing import Any

import pytest
import trio

from protocol import frames
from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch, write_batch_crc
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

PRODUCE, FETCH, API_VERSIONS = 0, 1, 18
RECORDS = 200
_COUNT_AT = 57  # recordsCount in a v2 batch header


def produce_frame(topic: str, records: bytes, partition: int = 0, correlation_id: int = 1
                  ) -> bytes:
    body = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(
        name=topic, partition_data=[PartitionProduceData(index=partition, records=records)])])
    return frames.join_chunks(frames.encode_request(PRODUCE, 9, correlation_id, "bad", body))


def fetch_frame(topic: str, offset: int, correlation_id: int = 1) -> bytes:
    body = FetchRequest(max_wait_ms=0, topics=[FetchTopic(topic=topic, partitions=[
        FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)])])
    return frames.join_chunks(frames.encode_request(FETCH, 12, correlation_id, "bad", body))


def api_versions_frame(correlation_id: int) -> bytes:
    body = ApiVersionsRequest(client_software_name="bad", client_software_version="1")
    return frames.join_chunks(frames.encode_request(API_VERSIONS, 3, correlation_id, "b", body))


def batch_with_count(count: int) -> bytes:
    good = bytearray(build_batch([(b"k%d" % i, b"v%d" % i, [], int(time.time() * 1000))
                                  for i in range(3)]))
    struct.pack_into(">i", good, _COUNT_AT, count)
    write_batch_crc(good, 0)  # a valid CRC: only the count is wrong
    return bytes(good)


def bad_crc_batch() -> bytes:
    batch = bytearray(build_batch([(b"k", b"v", [], int(time.time() * 1000))]))
    batch[-1] ^= 0xFF
    return bytes(batch)


def undecodable_produce() -> bytes:
    cut = produce_frame("live", build_batch([(b"k", b"v")]))[4:44]
    return struct.pack(">i", len(cut)) + cut


#: Sent whole; the broker must close the connection without answering.
CLOSED = {
    "garbage": b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n",
    "size over socket.request.max.bytes": struct.pack(">i", 104857600 + 1) + b"\0" * 32,
    "negative size": struct.pack(">i", -7) + b"\0" * 32,
    "zero size": struct.pack(">i", 0),
    "unknown api key": struct.pack(">ihhi", 10, 9999, 0, 5) + b"\xff\xff",
    "unknown fetch version": struct.pack(">ihhi", 10, FETCH, 99, 5) + b"\xff\xff",
    "undecodable produce": undecodable_produce(),
}
#: (request, api key, version) -> the error code of the (only) partition in the answer.
ANSWERED: dict[str, tuple[bytes, int, ErrorCode]] = {
    "bad crc": (produce_frame("live", bad_crc_batch()), PRODUCE, ErrorCode.CORRUPT_MESSAGE),
    "record count too high": (produce_frame("live", batch_with_count(4)), PRODUCE,
                              ErrorCode.INVALID_RECORD),
    "record count too low": (produce_frame("live", batch_with_count(2)), PRODUCE,
                             ErrorCode.INVALID_RECORD),
    "unknown topic": (produce_frame("nope", batch_with_count(3)), PRODUCE,
                      ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    "unknown partition": (produce_frame("live", batch_with_count(3), partition=7), PRODUCE,
                          ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    "fetch out of range": (fetch_frame("live", 10**9), FETCH, ErrorCode.OFFSET_OUT_OF_RANGE),
}


async def read_frame(stream: trio.SocketStream) -> bytes | None:
    """The next response frame, or None when the broker closed the connection."""
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        try:
            data = await stream.receive_some(1 << 16)
        except trio.BrokenResourceError:
            return None
        if not data:
            assert buf == b"", "closed in the middle of a response"
            return None
        buf += data
    return buf[4:]


def local_peer(stream: trio.SocketStream) -> str:
    host, port = stream.socket.getsockname()[:2]
    return f"{host}:{port}"


async def expect_closed(broker: RunningBroker, payload: bytes, peers: list[str]) -> None:
    stream = await trio.open_tcp_stream(broker.host, broker.port)
    peers.append(local_peer(stream))
    await stream.send_all(payload)
    assert await read_frame(stream) is None
    await stream.aclose()


async def truncated_then_close(broker: RunningBroker, peers: list[str]) -> None:
    stream = await trio.open_tcp_stream(broker.host, broker.port)
    peers.append(local_peer(stream))
    await stream.send_all(api_versions_frame(1)[:9])
    await stream.aclose()


async def expect_answer(broker: RunningBroker, payload: bytes, api_key: int,
                        code: ErrorCode) -> None:
    stream = await trio.open_tcp_stream(broker.host, broker.port)
    await stream.send_all(payload)
    frame = await read_frame(stream)
    assert frame is not None
    _, body = frames.decode_response(frame, api_key, 9 if api_key == PRODUCE else 12)
    if api_key == PRODUCE:
        [[p]] = [t.partition_responses for t in body.responses]
        assert (p.error_code, p.base_offset, p.error_message) == (code, -1, None)
    else:
        [[p]] = [t.partitions for t in body.responses]
        assert p.error_code == code
    # The connection keeps serving.
    await stream.send_all(api_versions_frame(2))
    frame = await read_frame(stream)
    assert frame is not None
    assert frames.decode_response(frame, API_VERSIONS, 3)[1].error_code == 0
    await stream.aclose()


# ------------------------------------------------------------------------------- clients


def kafka_python_produce(bootstrap: str, halfway: threading.Event, go_on: threading.Event
                         ) -> list[int]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    offsets = []
    try:
        for i in range(RECORDS):
            if i == RECORDS // 2:
                halfway.set()
                assert go_on.wait(60)
            offsets.append(producer.send("live", value=b"record-%03d" % i).get(30).offset)
        return offsets
    finally:
        producer.close(10)


def confluent_consume(bootstrap: str) -> list[tuple[Any, Any]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-bad-input",
                         "enable.auto.commit": False})  # default fetch.wait.max.ms: long poll
    try:
        consumer.assign([TopicPartition("live", 0, OFFSET_BEGINNING)])
        got: list[tuple[Any, Any]] = []
        deadline = time.monotonic() + 90
        while len(got) < RECORDS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append((msg.offset(), msg.value()))
        return got
    finally:
        consumer.close()


async def test_bad_input_while_real_clients_work(broker: RunningBroker,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="odradek.connection")
    broker.broker.topics.create("live", 1)
    halfway, go_on = threading.Event(), threading.Event()
    produced: list[list[int]] = []
    consumed: list[list[tuple[Any, Any]]] = []

    async def produce() -> None:
        produced.append(await trio.to_thread.run_sync(
            kafka_python_produce, broker.bootstrap, halfway, go_on))

    async def consume() -> None:
        consumed.append(await trio.to_thread.run_sync(confluent_consume, broker.bootstrap))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        nursery.start_soon(consume)
        with trio.fail_after(60):
            while not halfway.is_set() or broker.broker.waiters.parked == 0:
                await trio.sleep(0.01)  # the consumer has caught up and long-polls

        try:
            await attack(broker, caplog)
        finally:
            go_on.set()  # the producer finishes even when an assertion failed

    # The real clients did not notice.
    assert produced == [list(range(RECORDS))]
    assert consumed == [[(i, b"record-%03d" % i) for i in range(RECORDS)]]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    log = broker.broker.topics.log("live", 0)
    assert log is not None and log.log_end_offset == RECORDS  # nothing bad was appended


async def attack(broker: RunningBroker, caplog: pytest.LogCaptureFixture) -> None:
    """Every bad input at once, each on its own connection."""
    closed_peers: list[str] = []
    truncated_peers: list[str] = []
    async with trio.open_nursery() as attacks:
        for payload in CLOSED.values():
            attacks.start_soon(expect_closed, broker, payload, closed_peers)
        attacks.start_soon(truncated_then_close, broker, truncated_peers)
        for payload, api_key, code in ANSWERED.values():
            attacks.start_soon(expect_answer, broker, payload, api_key, code)

    def lines_for(peer: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records
                if r.name == "odradek.connection" and f"peer={peer} " in r.getMessage()]

    # The truncated frame's close is noticed on the broker's own time: wait for it.
    with trio.fail_after(30):
        while not lines_for(truncated_peers[0]):
            await trio.sleep(0.01)
    for peer in closed_peers + truncated_peers:
        [record] = lines_for(peer)  # exactly one line per closed connection
        assert record.levelno == logging.WARNING and "closing connection" in (
            record.getMessage()), record.getMessage()
    assert "inside a frame" in lines_for(truncated_peers[0])[0].getMessage()
