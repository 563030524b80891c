"""The transaction APIs over a real socket with exact requests (`tests.wire`), for what real
clients cannot express: every version's error mapping, AddPartitionsToTxn v4/v5 batches and
verify-only checks, transactional offsets and `require_stable`, and start-up recovery of a
transaction left in PrepareCommit.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from broker.config import BrokerConfig
from broker.groups.records import partition_for
from broker.server import Broker
from broker.transactions.log import TRANSACTION_STATE_TOPIC
from broker.transactions.state import TransactionState
from protocol.errors import ErrorCode
from protocol.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from protocol.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from protocol.messages.describe_transactions_request import DescribeTransactionsRequest
from protocol.messages.end_txn_request import EndTxnRequest
from protocol.messages.find_coordinator_request import FindCoordinatorRequest
from protocol.messages.init_producer_id_request import InitProducerIdRequest
from protocol.messages.list_transactions_request import ListTransactionsRequest
from protocol.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from protocol.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)
from protocol.records import iter_batches
from tests.wire import WireClient

S = TransactionState


@pytest.fixture
def broker_config(tmp_path) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            "offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}


@pytest.fixture
def make_topic(broker: Any) -> Any:
    def make(name: str, partitions: int = 1) -> Any:
        return broker.broker.topics.create(name, partitions)

    return make


async def find_txn_coordinator(wire: WireClient) -> None:
    response = await wire.request(10, 4, FindCoordinatorRequest(key_type=1,
                                                                coordinator_keys=["a", "b"]))
    assert [c.error_code for c in response.coordinators] == [0, 0]


async def init(wire: WireClient, txn: str, version: int = 4, pid: int = -1,
               epoch: int = -1) -> Any:
    return await wire.request(22, version, InitProducerIdRequest(
        transactional_id=txn, transaction_timeout_ms=60000, producer_id=pid,
        producer_epoch=epoch))


def add_v3(txn: str, pid: int, epoch: int, topics: dict[str, list[int]]
           ) -> AddPartitionsToTxnRequest:
    return AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=txn, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[AddPartitionsToTxnTopic(name=t, partitions=ps)
                             for t, ps in topics.items()])


def errors_v3(response: Any) -> dict[tuple[str, int], int]:
    return {(t.name, r.partition_index): r.partition_error_code
            for t in response.results_by_topic_v3_and_below for r in t.results_by_partition}


async def test_find_coordinator_creates_the_state_topic(broker, wire):
    assert await init(wire, "early") is not None
    assert (await init(wire, "early")).error_code == ErrorCode.NOT_COORDINATOR
    response = await wire.request(10, 3, FindCoordinatorRequest(key="early", key_type=1))
    assert (response.error_code, response.node_id, response.port) == (0, 1, broker.port)
    topic = broker.broker.topics.get(TRANSACTION_STATE_TOPIC)
    assert topic.partitions == 3 and topic.internal
    assert topic.configs["cleanup.policy"] == "compact"
    assert topic.configs["compression.type"] == "uncompressed"
    await find_txn_coordinator(wire)


async def test_add_partitions_v0_to_v3(broker, wire, make_topic):
    make_topic("t", 2)
    await find_txn_coordinator(wire)
    first = await init(wire, "x")
    pid, epoch = first.producer_id, first.producer_epoch
    response = await wire.request(24, 3, add_v3("x", pid, epoch, {"t": [0, 5],
                                                                  "__consumer_offsets": [0]}))
    assert errors_v3(response) == {
        ("t", 0): ErrorCode.OPERATION_NOT_ATTEMPTED, ("t", 5): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("__consumer_offsets", 0): ErrorCode.TOPIC_AUTHORIZATION_FAILED}
    response = await wire.request(24, 3, add_v3("x", pid, epoch, {"t": [0, 1]}))
    assert set(errors_v3(response).values()) == {ErrorCode.NONE}
    # A stale epoch: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
    for version, code in ((1, ErrorCode.INVALID_PRODUCER_EPOCH), (2, ErrorCode.PRODUCER_FENCED)):
        response = await wire.request(24, version, add_v3("x", pid, epoch + 1, {"t": [0]}))
        assert errors_v3(response) == {("t", 0): code}
    response = await wire.request(24, 0, add_v3("other", pid, epoch, {"t": [0]}))
    assert errors_v3(response) == {("t", 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}


@pytest.mark.parametrize("version, not_added", [(4, ErrorCode.INVALID_TXN_STATE),
                                                (5, ErrorCode.TRANSACTION_ABORTABLE)])
async def test_add_partitions_v4_batches_and_verifies(broker, wire, make_topic, version,
                                                      not_added):
    make_topic("t", 2)
    await find_txn_coordinator(wire)
    a, b = await init(wire, "a"), await init(wire, "b")
    response = await wire.request(24, version, AddPartitionsToTxnRequest(transactions=[
        AddPartitionsToTxnTransaction(transactional_id="a", producer_id=a.producer_id,
                                      producer_epoch=a.producer_epoch,
                                      topics=[AddPartitionsToTxnTopic(name="t", partitions=[0])]),
        AddPartitionsToTxnTransaction(transactional_id="b", producer_id=b.producer_id,
                                      producer_epoch=b.producer_epoch + 1,
                                      topics=[AddPartitionsToTxnTopic(name="t", partitions=[1])]),
    ]))
    got = {r.transactional_id: [p.partition_error_code for t in r.topic_results
                                for p in t.results_by_partition]
           for r in response.results_by_transaction}
    assert response.error_code == 0
    assert got == {"a": [0], "b": [ErrorCode.PRODUCER_FENCED]}
    response = await wire.request(24, version, AddPartitionsToTxnRequest(transactions=[
        AddPartitionsToTxnTransaction(transactional_id="a", producer_id=a.producer_id,
                                      producer_epoch=a.producer_epoch, verify_only=True,
                                      topics=[AddPartitionsToTxnTopic(name="t",
                                                                      partitions=[0, 1])])]))
    assert [p.partition_error_code for p in
            response.results_by_transaction[0].topic_results[0].results_by_partition] == [
        ErrorCode.NONE, not_added]
    assert broker.broker.transactions.coordinator.txns["a"].partitions == {("t", 0)}


async def test_init_producer_id_fenced_per_version(broker, wire):
    await find_txn_coordinator(wire)
    first = await init(wire, "x")
    await init(wire, "x")  # epoch 1: the first producer's id/epoch is now stale
    for version, code in ((3, ErrorCode.INVALID_PRODUCER_EPOCH), (4, ErrorCode.PRODUCER_FENCED)):
        response = await init(wire, "x", version, first.producer_id + 1, 0)
        assert (response.error_code, response.producer_id) == (code, -1)
    assert (await init(wire, "x", 4, first.producer_id, 1)).producer_epoch == 2


async def txn_offset_commit(wire: WireClient, version: int, txn: Any, group: str,
                            offset: int) -> int:
    response = await wire.request(28, version, TxnOffsetCommitRequest(
        transactional_id="x", group_id=group, producer_id=txn.producer_id,
        producer_epoch=txn.producer_epoch, topics=[TxnOffsetCommitRequestTopic(
            name="t", partitions=[TxnOffsetCommitRequestPartition(partition_index=0,
                                                                  committed_offset=offset)])]))
    return response.topics[0].partitions[0].error_code


async def offset_fetch(wire: WireClient, group: str, stable: bool) -> tuple[int, int]:
    response = await wire.request(9, 7, OffsetFetchRequest(
        group_id=group, require_stable=stable,
        topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0])]))
    p = response.topics[0].partitions[0]
    return p.error_code, p.committed_offset


async def test_transactional_offsets_pending_until_the_marker(broker, wire, make_topic):
    make_topic("t", 1)
    await find_txn_coordinator(wire)
    txn = await init(wire, "x")
    # Without AddOffsetsToTxn the offsets partition is not in the transaction.
    assert await txn_offset_commit(wire, 3, txn, "g", 5) == ErrorCode.INVALID_TXN_STATE
    assert await txn_offset_commit(wire, 4, txn, "g", 5) == ErrorCode.TRANSACTION_ABORTABLE
    for commit, offset in ((True, 7), (False, 9)):
        response = await wire.request(25, 3, AddOffsetsToTxnRequest(
            transactional_id="x", producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch, group_id="g"))
        assert response.error_code == 0
        assert await txn_offset_commit(wire, 3, txn, "g", offset) == 0
        assert await offset_fetch(wire, "g", True) == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)
        assert (await offset_fetch(wire, "g", False))[1] == (-1 if commit else 7)
        response = await wire.request(26, 3, EndTxnRequest(
            transactional_id="x", producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch, committed=commit))
        assert response.error_code == 0
        assert await offset_fetch(wire, "g", True) == (0, 7)
    # The markers landed in the group's __consumer_offsets partition.
    plog = broker.broker.topics.log("__consumer_offsets", partition_for("g", 3))
    data = plog.read_bytes(0, 1 << 20, max_offset=plog.high_watermark)
    assert sum(h.is_control for _, h in iter_batches(data)) == 2


async def test_describe_and_list_transactions(broker, wire, make_topic):
    make_topic("t", 1)
    await find_txn_coordinator(wire)
    a = await init(wire, "a")
    await init(wire, "b")
    await wire.request(24, 3, add_v3("a", a.producer_id, a.producer_epoch, {"t": [0]}))
    response = await wire.request(65, 0, DescribeTransactionsRequest(
        transactional_ids=["a", "nope", ""]))
    described = {s.transactional_id: s for s in response.transaction_states}
    assert described["a"].transaction_state == "Ongoing"
    assert [(t.topic, t.partitions) for t in described["a"].topics] == [("t", [0])]
    assert described["nope"].error_code == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    assert described[""].error_code == ErrorCode.INVALID_REQUEST
    response = await wire.request(66, 0, ListTransactionsRequest(state_filters=["Ongoing", "X"]))
    assert [s.transactional_id for s in response.transaction_states] == ["a"]
    assert response.unknown_state_filters == ["X"]
    response = await wire.request(66, 2, ListTransactionsRequest(transactional_id_pattern="b.*"))
    assert [(s.transactional_id, s.transaction_state)
            for s in response.transaction_states] == [("b", "Empty")]
    response = await wire.request(66, 2, ListTransactionsRequest(transactional_id_pattern="["))
    assert response.error_code == ErrorCode.INVALID_REGULAR_EXPRESSION
    response = await wire.request(66, 1, ListTransactionsRequest(duration_filter=3_600_000))
    assert [s.transactional_id for s in response.transaction_states] == ["b"]


async def test_prepare_commit_completes_after_a_restart(broker_config):
    """A stop between PrepareCommit and the markers: the restarted coordinator writes them."""
    config = BrokerConfig(broker_config)
    first = Broker(config)
    async with trio.open_nursery() as nursery:
        ports = await nursery.start(first.serve)
        first.topics.create("t", 2)
        wire = await WireClient.connect("127.0.0.1", ports[0])
        await find_txn_coordinator(wire)
        txn = await init(wire, "x")
        await wire.request(24, 3, add_v3("x", txn.producer_id, txn.producer_epoch,
                                         {"t": [0, 1]}))
        first.transactions.coordinator.markers = _Refuse()  # the "crash" after PrepareCommit
        response = await wire.request(26, 3, EndTxnRequest(
            transactional_id="x", producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch, committed=True))
        assert response.error_code == 0
        assert first.transactions.coordinator.txns["x"].state is S.PREPARE_COMMIT
        await wire.aclose()
        nursery.cancel_scope.cancel()
    second = Broker(config)
    try:
        meta = second.transactions.coordinator.txns["x"]
        assert meta.state is S.COMPLETE_COMMIT
        for p in (0, 1):
            plog = second.topics.log("t", p)
            data = plog.read_bytes(0, 1 << 20, max_offset=plog.high_watermark)
            assert [h.is_control for _, h in iter_batches(data)] == [True]
    finally:
        second.close()


class _Refuse:
    def write_marker(self, *args: Any) -> bool:
        return False
