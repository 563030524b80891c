"""Produce over the wire: every version, every error Kafka 4.4 answers, acks=0.

Expected answers were checked against a running Apache Kafka 4.4 (same requests through
the same codec); see broker/handlers/produce.py for the sources.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest
import trio

from broker.handlers import load_all
from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import TimestampType, build_batch, iter_batches, read_batch_header
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

PRODUCE = 0


def request(topic: str, records: bytes | None, *, acks: int = -1, partition: int = 0,
            transactional_id: str | None = None, topic_id: uuid.UUID | None = None
            ) -> ProduceRequest:
    data = TopicProduceData(name=topic, partition_data=[
        PartitionProduceData(index=partition, records=records)])
    if topic_id is not None:
        data.topic_id = topic_id
    return ProduceRequest(transactional_id=transactional_id, acks=acks, timeout_ms=5000,
                          topic_data=[data])


def batch(running: RunningBroker, n: int = 1, **kwargs: Any) -> bytes:
    ts = kwargs.pop("timestamp", running.broker.clock())
    return build_batch([(b"k%d" % i, b"v%d" % i, [], ts) for i in range(n)], **kwargs)


def only(response: Any) -> Any:
    [topic] = response.responses
    [partition] = topic.partition_responses
    return partition


async def produce(wire: WireClient, req: ProduceRequest, version: int = 9) -> Any:
    return only(await wire.request(PRODUCE, version, req))


def assert_failed(p: Any, code: ErrorCode, log_start_offset: int = -1,
                  message: str | None = None) -> None:
    assert (p.error_code, p.base_offset, p.log_append_time_ms, p.log_start_offset,
            p.error_message) == (code, -1, -1, log_start_offset, message)


def test_advertised_versions() -> None:
    registry = load_all()
    # Capped at v11: v12+ is transactions v2 (KIP-890 part 2), not served.
    assert (registry[0].min_version, registry[0].max_version) == (0, 11)
    assert (registry[22].min_version, registry[22].max_version) == (0, 5)


@pytest.mark.parametrize("version", range(3, 12))
async def test_every_version_appends(broker: RunningBroker, wire: WireClient,
                                     version: int) -> None:
    topic = broker.broker.topics.create("t", 1)
    req = request("t", batch(broker, 3), topic_id=topic.topic_id if version >= 13 else None)
    response = await wire.request(PRODUCE, version, req)
    [t] = response.responses
    assert (t.name, t.topic_id) == (("", topic.topic_id) if version >= 13
                                    else ("t", uuid.UUID(int=0)))
    p = only(response)
    assert (p.error_code, p.base_offset, p.log_append_time_ms) == (0, 0, -1)
    assert p.log_start_offset == (0 if version >= 5 else -1)  # not on the wire before v5
    log = broker.broker.topics.log("t", 0)
    assert log is not None and log.log_end_offset == 3
    second = only(await wire.request(PRODUCE, version, req))
    assert second.base_offset == 3


async def test_old_versions_close_the_connection(broker: RunningBroker, wire: WireClient
                                                 ) -> None:
    # Produce v2 is advertised (Kafka 4.4 does) but not decodable: the connection closes.
    body = struct.pack(">hhih", PRODUCE, 2, 7, 4) + b"test" + struct.pack(">hii", 1, 1000, 0)
    await wire._stream.send_all(struct.pack(">i", len(body)) + body)
    with pytest.raises(trio.BrokenResourceError):
        await wire.request(18, 0, ApiVersionsRequest())


async def test_unknown_topic_and_partition(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 2)
    assert_failed(await produce(wire, request("nope", batch(broker))),
                  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    assert_failed(await produce(wire, request("t", batch(broker), partition=2)),
                  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    assert_failed(await produce(wire, request("t", batch(broker), partition=-1)),
                  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)


@pytest.mark.parametrize("version", [12, 13])
async def test_transactions_v2_versions_are_not_served(broker: RunningBroker, wire: WireClient,
                                                      version: int) -> None:
    topic = broker.broker.topics.create("t", 1)
    await wire.send(PRODUCE, version, request("t", batch(broker), topic_id=topic.topic_id))
    with pytest.raises(trio.BrokenResourceError):
        await wire.receive(PRODUCE, version)


async def test_invalid_required_acks(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    for acks in (2, -2, 5):
        assert_failed(await produce(wire, request("t", batch(broker), acks=acks)),
                      ErrorCode.INVALID_REQUIRED_ACKS)
    # Request-level checks come first: an unknown topic is still UNKNOWN_TOPIC_OR_PARTITION.
    assert_failed(await produce(wire, request("nope", batch(broker), acks=2)),
                  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    log = broker.broker.topics.log("t", 0)
    assert log is not None and log.log_end_offset == 0


async def test_internal_topic_is_refused(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("__consumer_offsets", 1)
    assert_failed(await produce(wire, request("__consumer_offsets", batch(broker))),
                  ErrorCode.INVALID_TOPIC_EXCEPTION)


async def test_message_too_large(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("small", 1, {"max.message.bytes": "200"})
    big = build_batch([(b"k", b"v" * 300, [], broker.broker.clock())])
    assert_failed(await produce(wire, request("small", big)), ErrorCode.MESSAGE_TOO_LARGE)


async def test_request_level_record_checks(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    two = batch(broker) + batch(broker)
    assert_failed(await produce(wire, request("t", two)), ErrorCode.INVALID_RECORD)
    assert_failed(await produce(wire, request("t", b"")), ErrorCode.INVALID_RECORD)
    assert_failed(await produce(wire, request("t", None)), ErrorCode.INVALID_RECORD)
    zstd = build_batch([(b"k", b"v" * 50, [], broker.broker.clock())], compression=4)
    assert_failed(await produce(wire, request("t", zstd), version=6),
                  ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
    assert (await produce(wire, request("t", zstd), version=7)).error_code == 0


async def test_log_level_record_checks(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    log = broker.broker.topics.log("t", 0)
    assert log is not None
    log.append(batch(broker, 4))
    log.delete_records(2)
    corrupt = bytearray(batch(broker))
    corrupt[-1] ^= 0xFF
    assert_failed(await produce(wire, request("t", bytes(corrupt))), ErrorCode.CORRUPT_MESSAGE)
    # Kafka's InvalidRecordException from the log: the partition's log start offset.
    nonzero_base = batch(broker, base_offset=5)
    assert_failed(await produce(wire, request("t", nonzero_base)), ErrorCode.INVALID_RECORD, 2)


async def test_invalid_timestamp_record_errors(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("ts", 1, {"message.timestamp.after.max.ms": "1000"})
    future = broker.broker.clock() + 3_600_000
    records = build_batch([(b"a", b"1", [], future - 3_600_000), (b"b", b"2", [], future)])
    p = await produce(wire, request("ts", records))
    assert (p.error_code, p.base_offset, p.log_start_offset) == (
        ErrorCode.INVALID_TIMESTAMP, -1, 0)
    assert p.error_message == "One or more records have been rejected due to invalid timestamp"
    assert [e.batch_index for e in p.record_errors] == [1]
    assert p.record_errors[0].batch_index_error_message.startswith(f"Timestamp {future} of")


async def test_compacted_topic_needs_keys(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("c", 1, {"cleanup.policy": "compact"})
    records = build_batch([(b"k", b"1"), (None, b"2"), (None, b"3")])
    p = await produce(wire, request("c", records))
    assert (p.error_code, p.log_start_offset) == (ErrorCode.INVALID_RECORD, 0)
    assert [e.batch_index for e in p.record_errors] == [1, 2]
    assert p.error_message.startswith("One or more records have been rejected due to 2 record")


async def test_log_append_time_topic(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("lat", 1, {"message.timestamp.type": "LogAppendTime"})
    before = broker.broker.clock()
    p = await produce(wire, request("lat", batch(broker, 2, timestamp=1000)))
    assert p.error_code == 0 and p.log_append_time_ms >= before
    log = broker.broker.topics.log("lat", 0)
    assert log is not None
    h = read_batch_header(log.read_bytes(0, 1 << 20))
    assert (h.timestamp_type, h.max_timestamp) == (TimestampType.LOG_APPEND_TIME,
                                                   p.log_append_time_ms)


async def test_create_time_max_timestamp_is_fixed(broker: RunningBroker, wire: WireClient
                                                  ) -> None:
    broker.broker.topics.create("t", 1)
    ts = broker.broker.clock()
    wrong = build_batch([(b"a", b"1", [], ts), (b"b", b"2", [], ts + 5)], max_timestamp=ts - 9)
    assert (await produce(wire, request("t", wrong))).error_code == 0
    log = broker.broker.topics.log("t", 0)
    assert log is not None
    [(_, h)] = list(iter_batches(log.read_bytes(0, 1 << 20)))
    assert h.max_timestamp == ts + 5


async def test_log_start_offset_in_response(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    log = broker.broker.topics.log("t", 0)
    assert log is not None
    log.append(batch(broker, 5))
    log.delete_records(3)
    p = await produce(wire, request("t", batch(broker)))
    assert (p.error_code, p.base_offset, p.log_start_offset) == (0, 5, 3)


async def test_min_insync_replicas_cannot_fail_on_one_broker(
        broker: RunningBroker, wire: WireClient) -> None:
    # Kafka 4.x uses min(min.insync.replicas, replication factor): a one-replica partition
    # accepts acks=all even with min.insync.replicas=2.
    broker.broker.topics.create("misr", 1, {"min.insync.replicas": "2"})
    assert (await produce(wire, request("misr", batch(broker), acks=-1))).error_code == 0


async def test_transactional_batches(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    txn = batch(broker, producer_id=7, producer_epoch=0, base_sequence=0,
                is_transactional=True)
    # Without a transactional id the whole request fails, every partition.
    req = request("t", txn)
    req.topic_data.append(TopicProduceData(name="nope", partition_data=[
        PartitionProduceData(index=0, records=batch(broker))]))
    response = await wire.request(PRODUCE, 9, req)
    for t in response.responses:
        assert_failed(t.partition_responses[0], ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    # With one the transaction coordinator verifies the partition; before its state is
    # loaded (no __transaction_state yet) that fails retriably, as Kafka's does
    # (tests/broker/test_txn_partition.py maps every verification outcome).
    p = await produce(wire, request("t", txn, transactional_id="tx"))
    assert (p.error_code, p.base_offset) == (ErrorCode.NOT_ENOUGH_REPLICAS, -1)
    assert p.error_message.startswith(
        "Unable to verify the partition has been added to the transaction. Underlying "
        "error: ")
    log = broker.broker.topics.log("t", 0)
    assert log is not None and log.log_end_offset == 0


async def test_acks_zero(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    waiting = trio.Event()

    async def park() -> None:
        waiting.set()
        assert await broker.broker.waiters.wait([("t", 0)], 30)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(park)
        await waiting.wait()
        await wire.send(PRODUCE, 9, request("t", batch(broker, 2), acks=0))
        # No response to acks=0: the next answer on the connection is ApiVersions'.
        response = await wire.request(18, 0, ApiVersionsRequest())
        assert response.error_code == 0
    log = broker.broker.topics.log("t", 0)
    assert log is not None and log.log_end_offset == 2


async def test_acks_zero_error_closes_the_connection(broker: RunningBroker, wire: WireClient
                                                     ) -> None:
    await wire.send(PRODUCE, 9, request("nope", batch(broker), acks=0))
    with pytest.raises(trio.BrokenResourceError):
        await wire.request(18, 0, ApiVersionsRequest())


async def test_many_topics_and_partitions(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("a", 3)
    broker.broker.topics.create("b", 1)
    req = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[
        TopicProduceData(name="a", partition_data=[
            PartitionProduceData(index=i, records=batch(broker, i + 1)) for i in (2, 0, 1)]),
        TopicProduceData(name="b", partition_data=[
            PartitionProduceData(index=0, records=batch(broker)),
            PartitionProduceData(index=1, records=batch(broker))]),
    ])
    response = await wire.request(PRODUCE, 9, req)
    got = [(t.name, p.index, p.error_code, p.base_offset)
           for t in response.responses for p in t.partition_responses]
    assert got == [("a", 2, 0, 0), ("a", 0, 0, 0), ("a", 1, 0, 0), ("b", 0, 0, 0),
                   ("b", 1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1)]
    ends = [broker.broker.topics.log("a", i).log_end_offset for i in range(3)]  # type: ignore[union-attr]
    assert ends == [1, 2, 3]
