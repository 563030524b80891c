"""InitProducerId and the idempotent producer over the wire, restarts included.

Answers checked against a running Apache Kafka 4.4 with the same requests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.producer_ids import BLOCK_SIZE
from broker.server import Broker
from protocol.errors import ErrorCode
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

INIT_PRODUCER_ID = 22


def init(transactional_id: str | None = None, timeout_ms: int = 60000, producer_id: int = -1,
         epoch: int = -1) -> InitProducerIdRequest:
    return InitProducerIdRequest(transactional_id=transactional_id,
                                 transaction_timeout_ms=timeout_ms, producer_id=producer_id,
                                 producer_epoch=epoch)


def idempotent(pid: int, seq: int, n: int = 1, epoch: int = 0, ts: int = 1_000) -> bytes:
    return build_batch([(b"k%d" % i, b"v", [], ts) for i in range(n)], producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq)


async def produce(wire: WireClient, records: bytes, topic: str = "t", version: int = 9) -> Any:
    req = ProduceRequest(acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(
        name=topic, partition_data=[PartitionProduceData(index=0, records=records)])])
    [t] = (await wire.request(0, version, req)).responses
    [p] = t.partition_responses
    return p


@pytest.mark.parametrize("version", range(0, 6))
async def test_init_producer_id_versions(broker: RunningBroker, wire: WireClient,
                                         version: int) -> None:
    first = await wire.request(INIT_PRODUCER_ID, version, init())
    second = await wire.request(INIT_PRODUCER_ID, version, init())
    assert (first.error_code, first.producer_id, first.producer_epoch) == (0, 0, 0)
    assert (second.error_code, second.producer_id, second.producer_epoch) == (0, 1, 0)


async def test_init_producer_id_errors(broker: RunningBroker, wire: WireClient) -> None:
    async def error(req: InitProducerIdRequest, version: int = 4) -> tuple[int, int, int]:
        r = await wire.request(INIT_PRODUCER_ID, version, req)
        return r.error_code, r.producer_id, r.producer_epoch

    assert await error(init(producer_id=5)) == (ErrorCode.INVALID_REQUEST, -1, -1)
    assert await error(init(epoch=0)) == (ErrorCode.INVALID_REQUEST, -1, -1)
    assert await error(init("")) == (ErrorCode.INVALID_REQUEST, -1, -1)
    assert await error(init("tx", timeout_ms=0)) == (ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1)
    assert await error(init("tx", timeout_ms=900_001)) == (
        ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1)
    # No transaction coordinator yet: what Kafka answers before its coordinator is loaded.
    assert await error(init("tx", timeout_ms=900_000)) == (ErrorCode.NOT_COORDINATOR, -1, -1)
    assert await error(init("tx"), version=0) == (ErrorCode.NOT_COORDINATOR, -1, -1)


async def test_epoch_bump_request_gets_a_new_producer_id(broker: RunningBroker,
                                                         wire: WireClient) -> None:
    first = await wire.request(INIT_PRODUCER_ID, 4, init())
    bumped = await wire.request(INIT_PRODUCER_ID, 4, init(producer_id=first.producer_id,
                                                          epoch=first.producer_epoch))
    # KIP-360 for an idempotent producer: Kafka hands out a fresh id at epoch 0.
    assert (bumped.error_code, bumped.producer_id, bumped.producer_epoch) == (
        0, first.producer_id + 1, 0)


async def test_sequence_checks(broker: RunningBroker, wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    pid = (await wire.request(INIT_PRODUCER_ID, 4, init())).producer_id
    b0 = idempotent(pid, 0, 3)
    assert (await produce(wire, b0)).base_offset == 0
    dup = await produce(wire, b0)
    # A duplicate: the original offset, and Kafka's log_append_time quirk (the stored
    # batch timestamp, here a CreateTime topic's max timestamp).
    assert (dup.error_code, dup.base_offset, dup.log_append_time_ms, dup.log_start_offset) == (
        0, 0, 1_000, 0)
    assert (await produce(wire, idempotent(pid, 3, 2))).base_offset == 3
    assert (await produce(wire, b0)).base_offset == 0  # any of the last five batches

    async def error(records: bytes) -> tuple[int, int, int]:
        p = await produce(wire, records)
        return p.error_code, p.base_offset, p.log_start_offset

    oos = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert await error(idempotent(pid, 9)) == (oos, -1, 0)  # gap
    assert await error(idempotent(pid, 4)) == (oos, -1, 0)  # overlap
    assert await error(idempotent(pid, 1, 2)) == (oos, -1, 0)  # not an exact duplicate
    assert await error(idempotent(pid, 3, epoch=1)) == (oos, -1, 0)  # new epoch, seq != 0
    assert (await produce(wire, idempotent(pid, 0, epoch=1))).base_offset == 5
    assert await error(idempotent(pid, 1, epoch=0)) == (ErrorCode.INVALID_PRODUCER_EPOCH, -1, 0)
    # An unknown producer id may start anywhere (Kafka 4.x: no UNKNOWN_PRODUCER_ID).
    assert (await produce(wire, idempotent(98765, 7))).error_code == 0
    assert (await produce(wire, idempotent(98765, 8))).error_code == 0
    # Sequences wrap from 2**31-1 to 0.
    assert (await produce(wire, idempotent(555, 2**31 - 2, 3))).error_code == 0
    assert (await produce(wire, idempotent(555, 1))).error_code == 0
    log = broker.broker.topics.log("t", 0)
    assert log is not None and log.log_end_offset == 12


async def test_duplicate_on_log_append_time_topic(broker: RunningBroker, wire: WireClient
                                                  ) -> None:
    broker.broker.topics.create("t", 1, {"message.timestamp.type": "LogAppendTime"})
    b0 = idempotent(3, 0)
    first = await produce(wire, b0)
    dup = await produce(wire, b0)
    assert first.log_append_time_ms > 1_000
    assert (dup.base_offset, dup.log_append_time_ms) == (0, first.log_append_time_ms)


@pytest.fixture
async def data_dir(tmp_path: Any) -> AsyncIterator[str]:
    yield str(tmp_path / "restart")


async def serve(nursery: trio.Nursery, data_dir: str) -> tuple[Broker, WireClient]:
    broker = Broker(BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0",
                                  "log.dirs": data_dir}))
    ports = await nursery.start(broker.serve)
    return broker, await WireClient.connect("127.0.0.1", ports[0])


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "unclean"])
async def test_state_survives_a_restart(data_dir: str, clean: bool) -> None:
    async with trio.open_nursery() as nursery:
        broker, wire = await serve(nursery, data_dir)
        broker.topics.create("t", 1)
        pid = (await wire.request(INIT_PRODUCER_ID, 4, init())).producer_id
        now = broker.clock()  # recent timestamps: older producers expire on load
        batches = [idempotent(pid, seq, 2, ts=now) for seq in (0, 2, 4)]
        for b in batches:
            assert (await produce(wire, b)).error_code == 0
        await wire.aclose()
        if clean:
            nursery.cancel_scope.cancel()  # serve() closes the logs: snapshot, marker
        else:
            broker.logs.close_without_shutdown()  # a crash: no snapshot, no marker
            broker._closed = True
            nursery.cancel_scope.cancel()

    log_dir = f"{data_dir}/t-0"
    snapshots = sorted(n for n in os.listdir(log_dir) if n.endswith(".snapshot"))
    assert snapshots == (["00000000000000000006.snapshot"] if clean else [])

    async with trio.open_nursery() as nursery:
        broker, wire = await serve(nursery, data_dir)
        # The duplicate is recognised from the restored (or rebuilt) state...
        assert (await produce(wire, batches[2])).base_offset == 4
        # ...the sequence continues, and a gap is still a gap.
        assert (await produce(wire, idempotent(pid, 8, ts=now))).error_code == (
            ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
        assert (await produce(wire, idempotent(pid, 6, ts=now))).base_offset == 6
        # Producer ids are never handed out twice: the next block starts after the last.
        again = await wire.request(INIT_PRODUCER_ID, 4, init())
        assert again.producer_id == pid + BLOCK_SIZE
        await wire.aclose()
        nursery.cancel_scope.cancel()
