"""What a killed transactional producer leaves behind, over a real socket with exact requests.

A consume-transform-produce instance that dies mid-transaction leaves it Ongoing, with
transactional offsets pending in its group, and possibly requests already in a socket
buffer that the broker handles only after the next instance's InitProducerId. The next
instance must find the group's offsets stable (OffsetFetch with `require_stable`) once the
fence has aborted the transaction, and the late requests must be fenced without leaving
anything pending, as Kafka's coordinators do (`TransactionCoordinator.handleInitProducerId`
aborts an Ongoing transaction with a bumped epoch; the ABORT marker on `__consumer_offsets`
drops the producer's pending offsets, `OffsetMetadataManager.replayEndTransactionMarker`).
"""

from __future__ import annotations

from typing import Any

import pytest

from broker.groups.records import OFFSETS_TOPIC, partition_for
from broker.transactions.state import TransactionState
from protocol.errors import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch
from tests.broker.transactions.test_txn_wire import (
    add_v3,
    errors_v3,
    find_txn_coordinator,
    init,
    offset_fetch,
    txn_offset_commit,
)
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            "offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}


async def add_offsets(wire: WireClient, txn: Any, group: str) -> int:
    response = await wire.request(25, 3, AddOffsetsToTxnRequest(
        transactional_id="x", producer_id=txn.producer_id, producer_epoch=txn.producer_epoch,
        group_id=group))
    return response.error_code


async def end_txn(wire: WireClient, txn: Any, commit: bool) -> int:
    response = await wire.request(26, 3, EndTxnRequest(
        transactional_id="x", producer_id=txn.producer_id, producer_epoch=txn.producer_epoch,
        committed=commit))
    return response.error_code


async def produce(wire: WireClient, txn: Any, sequence: int, value: bytes) -> int:
    batch = build_batch([(None, value)], producer_id=txn.producer_id,
                        producer_epoch=txn.producer_epoch, base_sequence=sequence,
                        is_transactional=True)
    response = await wire.request(0, 11, ProduceRequest(
        transactional_id="x", acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(
            name="t", partition_data=[PartitionProduceData(index=0, records=batch)])]))
    return response.responses[0].partition_responses[0].error_code


async def test_fenced_transaction_leaves_stable_offsets(broker, wire):
    broker.broker.topics.create("t", 1)
    coordinator = broker.broker.groups.coordinator
    await find_txn_coordinator(wire)
    first = await init(wire, "x")
    # A committed offset, then a transaction with records and a pending offset: the
    # producer "dies" here.
    assert await add_offsets(wire, first, "g") == 0
    assert await txn_offset_commit(wire, 3, first, "g", 5) == 0
    assert await end_txn(wire, first, commit=True) == 0
    assert set(errors_v3(await wire.request(24, 3, add_v3(
        "x", first.producer_id, first.producer_epoch, {"t": [0]}))).values()) == {0}
    assert await produce(wire, first, 0, b"dead") == 0
    assert await add_offsets(wire, first, "g") == 0
    assert await txn_offset_commit(wire, 3, first, "g", 7) == 0
    assert await offset_fetch(wire, "g", True) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)

    # The next instance: the first InitProducerId fences and aborts, the retry bumps again.
    assert (await init(wire, "x")).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    meta = broker.broker.transactions.coordinator.txns["x"]
    assert (meta.state, meta.producer_epoch) == (TransactionState.COMPLETE_ABORT, 1)
    assert coordinator.pending_partitions("g") == set()
    assert await offset_fetch(wire, "g", True) == (0, 5)
    second = await init(wire, "x")
    assert (second.error_code, second.producer_epoch) == (0, 2)

    # The dead instance's requests that were still in flight: all fenced, nothing pending.
    assert await produce(wire, first, 1, b"late") == ErrorCode.INVALID_PRODUCER_EPOCH
    assert await add_offsets(wire, first, "g") == ErrorCode.PRODUCER_FENCED
    assert await txn_offset_commit(wire, 3, first, "g", 9) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert await end_txn(wire, first, commit=True) == ErrorCode.PRODUCER_FENCED
    assert coordinator.pending_partitions("g") == set()
    assert await offset_fetch(wire, "g", True) == (0, 5)

    # The same, interleaved with the new instance's own transaction.
    assert await add_offsets(wire, second, "g") == 0
    assert await txn_offset_commit(wire, 3, first, "g", 9) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert await end_txn(wire, first, commit=True) == ErrorCode.PRODUCER_FENCED
    assert await txn_offset_commit(wire, 3, second, "g", 8) == 0
    assert await end_txn(wire, second, commit=True) == 0
    assert await offset_fetch(wire, "g", True) == (0, 8)
    assert meta.state is TransactionState.COMPLETE_COMMIT
    # Nothing is left open: read_committed consumers see up to the end of both logs.
    for topic, partition in (("t", 0), (OFFSETS_TOPIC, partition_for("g", 3))):
        plog = broker.broker.topics.log(topic, partition)
        assert plog.last_stable_offset == plog.high_watermark
