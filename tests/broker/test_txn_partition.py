"""The partition side of transactions over the wire: Fetch and ListOffsets isolation levels,
the last stable offset, aborted transactions, read_committed long polls, and the KIP-890
verification of transactional produces.

Transactional data and markers are written through the storage API (no coordinator
involved); the produce tests stand a scripted coordinator in for `broker.transactions` so
that every verification outcome can be checked. Expected answers follow Kafka 4.4's
`ReplicaManager`/`KafkaApis`/`AddPartitionsToTxnManager` (see the handlers' docstrings).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import trio

from protocol.errors import ErrorCode
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch, iter_batches
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)

PRODUCE, FETCH, LIST_OFFSETS = 0, 1, 2
T0 = 1_700_000_000_000


def txn(pid: int, n: int, *, seq: int = 0, epoch: int = 0, ts: int = T0) -> bytes:
    return build_batch([(b"k", b"t%d-%d" % (pid, i), [], ts + i) for i in range(n)],
                       producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       is_transactional=True)


def plain(n: int = 1, ts: int = T0) -> bytes:
    return build_batch([(b"k", b"p%d" % i, [], ts + i) for i in range(n)])


def seed(running: RunningBroker) -> Any:
    """0-1 plain, 2-3 txn of producer 1, 4 txn of producer 2, 5 ABORT of 1, 6 plain:
    producer 2's transaction is open, so the last stable offset is 4."""
    running.broker.topics.create("t", 1)
    log = running.broker.topics.log("t", 0)
    assert log is not None
    log.append(plain(2))
    log.append(txn(1, 2, ts=T0 + 10))
    log.append(txn(2, 1, ts=T0 + 20))
    log.append_marker(1, 0, 0, commit=False, timestamp_ms=T0 + 30)
    log.append(plain(1, ts=T0 + 40))
    return log


def fetch_request(version: int, offset: int, isolation: int, topic_id: uuid.UUID,
                  **kw: Any) -> FetchRequest:
    kw.setdefault("max_wait_ms", 0)
    partition = FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)
    topic = FetchTopic(topic_id=topic_id, partitions=[partition]) if version >= 13 \
        else FetchTopic(topic="t", partitions=[partition])
    return FetchRequest(topics=[topic], isolation_level=isolation, **kw)


async def fetch(wire: WireClient, version: int, offset: int, isolation: int,
                topic_id: uuid.UUID, **kw: Any) -> Any:
    response = await wire.request(FETCH, version, fetch_request(
        version, offset, isolation, topic_id, **kw))
    [topic] = response.responses
    [p] = topic.partitions
    return p


def offsets(records: Any) -> list[tuple[int, bool]]:
    return [(h.base_offset, h.is_control) for _, h in iter_batches(bytes(records or b""))]


# ---------------------------------------------------------------------------------- Fetch


@pytest.mark.parametrize("version", [4, 11, 12, 13, 18])
async def test_fetch_isolation_levels(broker: RunningBroker, wire: WireClient,
                                      version: int) -> None:
    log = seed(broker)
    topic_id = broker.broker.topics.get("t").topic_id  # type: ignore[union-attr]
    committed = await fetch(wire, version, 0, 1, topic_id)
    # read_committed stops below the LSO (4): the batches at 0 and 2 only.
    assert offsets(committed.records) == [(0, False), (2, False)]
    assert (committed.high_watermark, committed.last_stable_offset) == (7, 4)
    assert [(a.producer_id, a.first_offset) for a in committed.aborted_transactions] == [(1, 2)]
    uncommitted = await fetch(wire, version, 0, 0, topic_id)
    assert offsets(uncommitted.records) == [(0, False), (2, False), (4, False), (5, True),
                                            (6, False)]
    # The LSO is reported for both isolation levels; aborted transactions only for one.
    assert (uncommitted.last_stable_offset, uncommitted.aborted_transactions) == (4, None)
    # At the LSO a read_committed fetch gets nothing, and an empty list.
    at_lso = await fetch(wire, version, 4, 1, topic_id)
    assert (offsets(at_lso.records), at_lso.aborted_transactions) == ([], [])
    log.append_marker(2, 0, 0, commit=True, timestamp_ms=T0 + 50)  # 7
    after = await fetch(wire, version, 4, 1, topic_id)
    assert offsets(after.records) == [(4, False), (5, True), (6, False), (7, True)]
    assert (after.high_watermark, after.last_stable_offset) == (8, 8)
    # [4, 8) overlaps producer 1's aborted transaction (2..5).
    assert [(a.producer_id, a.first_offset) for a in after.aborted_transactions] == [(1, 2)]
    past = await fetch(wire, version, 6, 1, topic_id)
    assert past.aborted_transactions == []


async def test_read_committed_long_poll_waits_for_the_marker(broker: RunningBroker,
                                                            wire: WireClient) -> None:
    broker.broker.topics.create("t", 1)
    log = broker.broker.topics.log("t", 0)
    assert log is not None
    result: list[Any] = []

    async def poll() -> None:
        result.append(await fetch(wire, 12, 0, 1, uuid.UUID(int=0), max_wait_ms=50_000,
                                  min_bytes=1))

    async def parked_again(count: int) -> None:
        while broker.broker.waiters.parked != count:
            await trio.sleep(0.005)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        await parked_again(1)
        # Transactional data moves the high watermark, not the LSO: the fetch parks again.
        log.append(txn(5, 2))
        broker.broker.waiters.notify("t", 0)
        await trio.sleep(0)
        await parked_again(1)
        assert not result
        log.append_marker(5, 0, 0, commit=True, timestamp_ms=T0 + 5)
        broker.broker.waiters.notify("t", 0)
    [p] = result
    assert offsets(p.records) == [(0, False), (2, True)]
    assert (p.last_stable_offset, p.aborted_transactions) == (3, [])


# ---------------------------------------------------------------------------- ListOffsets


async def list_offset(wire: WireClient, timestamp: int, isolation: int) -> tuple[int, int]:
    response = await wire.request(LIST_OFFSETS, 7, ListOffsetsRequest(
        replica_id=-1, isolation_level=isolation, topics=[ListOffsetsTopic(
            name="t", partitions=[ListOffsetsPartition(partition_index=0,
                                                       timestamp=timestamp)])]))
    [topic] = response.topics
    [p] = topic.partitions
    assert p.error_code == ErrorCode.NONE
    return p.offset, p.timestamp


async def test_list_offsets_read_committed(broker: RunningBroker, wire: WireClient) -> None:
    seed(broker)
    assert await list_offset(wire, -1, 0) == (7, -1)  # the high watermark
    assert await list_offset(wire, -1, 1) == (4, -1)  # the last stable offset
    # A timestamp lookup only finds offsets below the last fetchable offset.
    assert await list_offset(wire, T0 + 10, 1) == (2, T0 + 10)
    assert await list_offset(wire, T0 + 20, 1) == (-1, -1)
    assert await list_offset(wire, T0 + 20, 0) == (4, T0 + 20)
    assert await list_offset(wire, -2, 1) == (0, -1)


# ------------------------------------------------------------------ Produce verification


class ScriptedCoordinator:
    """Stands in for `broker.transactions`: answers `verify_partitions` with `errors`."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, int], ErrorCode] = {}
        self.calls: list[tuple[str, int, int, list[tuple[str, int]]]] = []

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          partitions: list[tuple[str, int]]
                          ) -> dict[tuple[str, int], ErrorCode]:
        self.calls.append((transactional_id, producer_id, producer_epoch, list(partitions)))
        return {tp: self.errors.get(tp, ErrorCode.NONE) for tp in partitions}


@pytest.fixture
def coordinator(broker: RunningBroker, monkeypatch: pytest.MonkeyPatch) -> ScriptedCoordinator:
    scripted = ScriptedCoordinator()
    monkeypatch.setattr(broker.broker, "transactions", scripted)
    return scripted


def produce_request(*parts: tuple[int, bytes]) -> ProduceRequest:
    return ProduceRequest(transactional_id="tx", acks=-1, timeout_ms=5000, topic_data=[
        TopicProduceData(name="t", partition_data=[
            PartitionProduceData(index=i, records=r) for i, r in parts])])


async def produce(wire: WireClient, version: int, *parts: tuple[int, bytes]) -> list[Any]:
    response = await wire.request(PRODUCE, version, produce_request(*parts))
    [topic] = response.responses
    return list(topic.partition_responses)


NOT_VERIFIED = "Unable to verify the partition has been added to the transaction. "


@pytest.mark.parametrize(("coordinator_error", "version", "code", "message"), [
    (ErrorCode.TRANSACTION_ABORTABLE, 11, ErrorCode.TRANSACTION_ABORTABLE, None),
    (ErrorCode.TRANSACTION_ABORTABLE, 10, ErrorCode.INVALID_TXN_STATE,
     "Partition was not added to the transaction"),
    (ErrorCode.PRODUCER_FENCED, 11, ErrorCode.INVALID_PRODUCER_EPOCH, None),
    (ErrorCode.INVALID_PRODUCER_ID_MAPPING, 11, ErrorCode.INVALID_PRODUCER_ID_MAPPING, None),
    (ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, 9, ErrorCode.NOT_ENOUGH_REPLICAS,
     NOT_VERIFIED + "Underlying error: COORDINATOR_LOAD_IN_PROGRESS"),
    (ErrorCode.CONCURRENT_TRANSACTIONS, 11, ErrorCode.NOT_ENOUGH_REPLICAS,
     NOT_VERIFIED + "Underlying error: CONCURRENT_TRANSACTIONS"),
    (ErrorCode.NOT_COORDINATOR, 3, ErrorCode.NOT_ENOUGH_REPLICAS,
     NOT_VERIFIED + "Underlying error: NOT_COORDINATOR"),
])
async def test_verification_errors(broker: RunningBroker, wire: WireClient,
                                   coordinator: ScriptedCoordinator,
                                   coordinator_error: ErrorCode, version: int,
                                   code: ErrorCode, message: str | None) -> None:
    broker.broker.topics.create("t", 2)
    coordinator.errors[("t", 1)] = coordinator_error
    ok, refused = await produce(wire, version, (0, txn(3, 2)), (1, txn(3, 1)))
    assert (ok.error_code, ok.base_offset) == (ErrorCode.NONE, 0)
    assert (refused.error_code, refused.base_offset, refused.log_start_offset,
            refused.error_message) == (code, -1, -1, message if version >= 8 else None)
    assert coordinator.calls == [("tx", 3, 0, [("t", 0), ("t", 1)])]  # one call a request
    assert broker.broker.topics.log("t", 1).log_end_offset == 0  # type: ignore[union-attr]
    assert broker.broker.topics.log("t", 0).ongoing_transactions() == {3: 0}  # type: ignore[union-attr]


async def test_partition_in_an_open_transaction_is_not_reverified(
        broker: RunningBroker, wire: WireClient, coordinator: ScriptedCoordinator) -> None:
    broker.broker.topics.create("t", 1)
    [first] = await produce(wire, 11, (0, txn(3, 2)))
    [second] = await produce(wire, 11, (0, txn(3, 1, seq=2)))
    assert (first.error_code, second.error_code, second.base_offset) == (0, 0, 2)
    assert len(coordinator.calls) == 1
    # Non-transactional batches of a transactional producer are not verified.
    log = broker.broker.topics.log("t", 0)
    assert log is not None
    log.append_marker(3, 0, 0, commit=True)
    idempotent = build_batch([(b"k", b"v")], producer_id=3, producer_epoch=0, base_sequence=3)
    [third] = await produce(wire, 11, (0, idempotent))
    assert (third.error_code, len(coordinator.calls)) == (0, 1)


@pytest.fixture
def no_verification(broker_config: dict[str, Any]) -> None:
    broker_config["transaction.partition.verification.enable"] = "false"


async def test_disabled_verification_appends_unchecked(
        no_verification: None, broker: RunningBroker, wire: WireClient,
        coordinator: ScriptedCoordinator) -> None:
    broker.broker.topics.create("t", 1)
    coordinator.errors[("t", 0)] = ErrorCode.TRANSACTION_ABORTABLE
    [p] = await produce(wire, 11, (0, txn(3, 2)))
    assert (p.error_code, p.base_offset, coordinator.calls) == (0, 0, [])


async def test_two_producers_in_one_request_fail_it_whole(
        broker: RunningBroker, wire: WireClient, coordinator: ScriptedCoordinator) -> None:
    broker.broker.topics.create("t", 2)
    a, b = await produce(wire, 11, (0, txn(3, 1)), (1, txn(4, 1)))
    assert (a.error_code, b.error_code) == (ErrorCode.INVALID_PRODUCER_ID_MAPPING,) * 2
    assert coordinator.calls == []
