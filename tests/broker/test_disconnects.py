"""Clients that vanish while the broker writes to them.

A consumer that closes its socket (with a reset) right after sending a Fetch whose answer
is several megabytes makes `os.sendfile` fail with EPIPE/ECONNRESET part-way. Kafka closes
that connection and goes on; so must we: the broker keeps serving, and another client
reads every record.
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from protocol import frames
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.records import Record, build_batch
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

FETCH = 1
BATCHES, RECORDS_PER_BATCH, VALUE = 16, 50, b"v" * 5000  # ~4 MB of log


def fetch_everything(topic: str) -> bytes:
    body = FetchRequest(max_wait_ms=0, max_bytes=64 << 20, topics=[FetchTopic(
        topic=topic, partitions=[FetchPartition(partition=0, fetch_offset=0,
                                                partition_max_bytes=64 << 20)])])
    return frames.join_chunks(frames.encode_request(FETCH, 12, 1, "gone", body))


def vanish_after_fetch(port: int, frame: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(frame)
    sock.recv(1)  # the answer has started
    # Closing with unread data (and linger 0) resets the connection.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fill(broker: RunningBroker, topic: str) -> None:
    """A one-partition `topic` holding BATCHES batches of RECORDS_PER_BATCH records."""
    broker.broker.topics.create(topic, 1)
    plog = broker.broker.topics.log(topic, 0)
    assert plog is not None
    for _ in range(BATCHES):
        plog.append(build_batch([Record(i, 0, None, VALUE, [])
                                 for i in range(RECORDS_PER_BATCH)]))


async def test_a_client_that_resets_during_sendfile_loses_only_its_connection(
        broker: RunningBroker, caplog: pytest.LogCaptureFixture) -> None:
    fill(broker, "big")
    frame = fetch_everything("big")
    for _ in range(5):
        await trio.to_thread.run_sync(vanish_after_fetch, broker.port, frame)

    # The broker is still up and serves the whole log to a real client.
    from confluent_kafka import Consumer, TopicPartition

    def consume_all() -> int:
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "after",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("big", 0, 0)])
        got = 0
        for _ in range(200):
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            got += sum(1 for m in batch if m.error() is None)
            if got >= BATCHES * RECORDS_PER_BATCH:
                break
        consumer.close()
        return got

    assert await trio.to_thread.run_sync(consume_all) == BATCHES * RECORDS_PER_BATCH
    assert "internal error" not in caplog.text


async def test_a_topic_deleted_while_its_fetch_answer_is_sent_closes_only_that_connection(
        broker: RunningBroker, caplog: pytest.LogCaptureFixture) -> None:
    """The answer's file slices point at segments that deletion closes: the connection is
    closed (the client fetches again), the broker logs no internal error and keeps serving."""
    fill(broker, "doomed")
    stream = await trio.open_tcp_stream("127.0.0.1", broker.port)
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await stream.send_all(fetch_everything("doomed"))
    first = await stream.receive_some(1)  # the answer has started; the socket fills up
    assert first
    await trio.sleep(0.2)  # the broker now waits for the socket to drain, mid-slice
    broker.broker.topics.delete("doomed")
    received = len(first)
    with trio.fail_after(30):
        while chunk := await stream.receive_some(1 << 16):
            received += len(chunk)
    assert received < BATCHES * RECORDS_PER_BATCH * len(VALUE)  # cut short, then closed
    await stream.aclose()
    assert "internal error" not in caplog.text
    # Still serving: a fresh topic round-trips.
    broker.broker.topics.create("after", 1)
    after = broker.broker.topics.log("after", 0)
    assert after is not None
    after.append(build_batch([Record(0, 0, None, b"x", [])]))
    assert after.log_end_offset == 1
