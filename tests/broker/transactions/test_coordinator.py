"""The transaction coordinator's state machine, with a memory store and a fake clock.

Each test drives `TransactionCoordinator` through Kafka's transitions and checks the error
codes Kafka's `TransactionCoordinator` answers, what is persisted, and the markers written.
"""

from __future__ import annotations

import itertools

import pytest

from broker.transactions.coordinator import MemoryTxnStore, TransactionCoordinator, TxnConfig
from broker.transactions.log import decode_record, key_bytes, value_bytes
from broker.transactions.state import (
    EPOCH_EXHAUSTED,
    IllegalTransition,
    TransactionMetadata,
    TransactionState,
)
from protocol.errors import ErrorCode

S = TransactionState
TP = ("t", 0)
TP2 = ("t", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


class Markers:
    def __init__(self) -> None:
        self.written: list[tuple[tuple[str, int], int, int, bool]] = []
        self.fail: set[tuple[str, int]] = set()

    def write_marker(self, tp: tuple[str, int], producer_id: int, producer_epoch: int,
                     coordinator_epoch: int, commit: bool) -> bool:
        if tp in self.fail:
            return False
        self.written.append((tp, producer_id, producer_epoch, commit))
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryTxnStore:
    return MemoryTxnStore()


@pytest.fixture
def markers() -> Markers:
    return Markers()


@pytest.fixture
def coord(clock: Clock, store: MemoryTxnStore, markers: Markers) -> TransactionCoordinator:
    ids = itertools.count(100)
    return TransactionCoordinator(TxnConfig(max_timeout_ms=60_000,
                                            transactional_id_expiration_ms=10_000),
                                  clock, lambda: next(ids), store, markers)


def init(coord: TransactionCoordinator, txn: str = "x", timeout: int = 5000,
         expected: tuple[int, int] | None = None) -> tuple[int, int]:
    result = coord.init_producer_id(txn, timeout, expected)
    assert result.error is ErrorCode.NONE, result
    return result.producer_id, result.producer_epoch


def test_init_new_id_then_bump_epoch(coord, store):
    assert init(coord) == (100, 0)
    assert init(coord) == (100, 1)
    assert store.writes == [("x", S.EMPTY), ("x", S.EMPTY)]
    assert coord.txns["x"].state is S.EMPTY


def test_init_validation(coord, store):
    assert coord.init_producer_id("", 5000, None).error is ErrorCode.INVALID_REQUEST
    assert coord.init_producer_id("x", 0, None).error is ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert coord.init_producer_id("x", 60_001, None).error \
        is ErrorCode.INVALID_TRANSACTION_TIMEOUT
    store.ready = False
    assert coord.init_producer_id("x", 5000, None).error is ErrorCode.NOT_COORDINATOR


def test_commit_writes_prepare_markers_complete(coord, store, markers):
    pid, epoch = init(coord)
    assert coord.add_partitions("x", pid, epoch, [TP, TP2]) is ErrorCode.NONE
    assert coord.txns["x"].state is S.ONGOING
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.NONE
    assert [s for _, s in store.writes] == [S.EMPTY, S.ONGOING, S.PREPARE_COMMIT,
                                            S.COMPLETE_COMMIT]
    assert markers.written == [(TP, pid, epoch, True), (TP2, pid, epoch, True)]
    meta = coord.txns["x"]
    assert meta.state is S.COMPLETE_COMMIT and meta.partitions == set()
    # A retried commit is fine; an abort of a committed transaction is not.
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.NONE
    assert coord.end_txn("x", pid, epoch, commit=False) is ErrorCode.INVALID_TXN_STATE


def test_end_txn_errors(coord):
    assert coord.end_txn("nope", 1, 0, commit=True) is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    pid, epoch = init(coord)
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.INVALID_TXN_STATE  # Empty
    coord.add_partitions("x", pid, epoch, [TP])
    assert coord.end_txn("x", pid + 1, epoch, commit=True) \
        is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert coord.end_txn("x", pid, epoch + 1, commit=True) is ErrorCode.PRODUCER_FENCED
    assert coord.end_txn("", pid, epoch, commit=True) is ErrorCode.INVALID_REQUEST


def test_add_partitions_errors(coord):
    assert coord.add_partitions("x", 1, 0, [TP]) is ErrorCode.INVALID_PRODUCER_ID_MAPPING
    pid, epoch = init(coord)
    assert coord.add_partitions("x", pid, epoch - 1, [TP]) is ErrorCode.PRODUCER_FENCED
    assert coord.add_partitions("x", pid + 5, epoch, [TP]) \
        is ErrorCode.INVALID_PRODUCER_ID_MAPPING


def test_verify_partitions(coord):
    pid, epoch = init(coord)
    assert coord.verify_partitions("x", pid, epoch, [TP]) == {TP: ErrorCode.TRANSACTION_ABORTABLE}
    coord.add_partitions("x", pid, epoch, [TP])
    assert coord.verify_partitions("x", pid, epoch, [TP, TP2]) == {
        TP: ErrorCode.NONE, TP2: ErrorCode.TRANSACTION_ABORTABLE}
    assert coord.verify_partitions("x", pid, epoch + 1, [TP]) == {TP: ErrorCode.PRODUCER_FENCED}
    assert coord.verify_partitions("y", pid, epoch, [TP]) == {
        TP: ErrorCode.INVALID_PRODUCER_ID_MAPPING}


def test_init_while_ongoing_fences_and_aborts(coord, markers):
    pid, epoch = init(coord)
    coord.add_partitions("x", pid, epoch, [TP])
    result = coord.init_producer_id("x", 5000, None)
    assert result.error is ErrorCode.CONCURRENT_TRANSACTIONS
    meta = coord.txns["x"]
    assert meta.state is S.COMPLETE_ABORT and meta.producer_epoch == epoch + 1
    assert markers.written == [(TP, pid, epoch + 1, False)]
    # The zombie is fenced; the retry bumps once more.
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.PRODUCER_FENCED
    assert coord.add_partitions("x", pid, epoch, [TP]) is ErrorCode.PRODUCER_FENCED
    assert init(coord) == (pid, epoch + 2)


def test_kip360_expected_epoch(coord):
    pid, epoch = init(coord)
    assert init(coord, expected=(pid, epoch)) == (pid, epoch + 1)
    # A retry with the previous epoch gets the same answer again.
    assert init(coord, expected=(pid, epoch)) == (pid, epoch + 1)
    assert coord.init_producer_id("x", 5000, (pid, epoch + 7)).error is ErrorCode.PRODUCER_FENCED
    assert coord.init_producer_id("x", 5000, (pid + 1, 0)).error is ErrorCode.PRODUCER_FENCED


def test_epoch_exhaustion_rotates_producer_id(coord):
    pid, _ = init(coord)
    coord.txns["x"].producer_epoch = EPOCH_EXHAUSTED
    new_pid, epoch = init(coord)
    assert new_pid != pid and epoch == 0
    assert coord.txns["x"].prev_producer_id == pid


def test_timeout_aborts_with_fence(coord, clock, markers):
    pid, epoch = init(coord, timeout=1000)
    coord.add_partitions("x", pid, epoch, [TP])
    assert coord.abort_timed_out(clock.now + 1000) == []  # not yet: start + timeout < now
    assert coord.next_timeout() == clock.now + 1000
    clock.now += 1001
    assert coord.abort_timed_out(clock.now) == ["x"]
    meta = coord.txns["x"]
    assert meta.state is S.COMPLETE_ABORT and meta.producer_epoch == epoch + 1
    assert markers.written == [(TP, pid, epoch + 1, False)]
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.PRODUCER_FENCED


def test_failed_marker_is_retried(coord, markers):
    pid, epoch = init(coord)
    coord.add_partitions("x", pid, epoch, [TP, TP2])
    markers.fail.add(TP2)
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.NONE
    meta = coord.txns["x"]
    assert meta.state is S.PREPARE_COMMIT and meta.partitions == {TP2}
    assert coord.end_txn("x", pid, epoch, commit=True) is ErrorCode.CONCURRENT_TRANSACTIONS
    assert coord.init_producer_id("x", 5000, None).error is ErrorCode.CONCURRENT_TRANSACTIONS
    assert coord.verify_partitions("x", pid, epoch, [TP2]) == {
        TP2: ErrorCode.CONCURRENT_TRANSACTIONS}
    markers.fail.clear()
    assert coord.complete_pending() == 0
    assert meta.state is S.COMPLETE_COMMIT
    assert markers.written[-1] == (TP2, pid, epoch, True)


def test_failed_log_write_changes_nothing(coord, store):
    pid, epoch = init(coord)
    store.fail = ErrorCode.NOT_COORDINATOR
    assert coord.add_partitions("x", pid, epoch, [TP]) is ErrorCode.NOT_COORDINATOR
    meta = coord.txns["x"]
    assert meta.state is S.EMPTY and not meta.pending_transition_in_progress
    store.fail = None
    assert coord.add_partitions("x", pid, epoch, [TP]) is ErrorCode.NONE


def test_expiration(coord, clock, store):
    init(coord, "a")
    pid, epoch = init(coord, "b")
    coord.add_partitions("b", pid, epoch, [TP])  # Ongoing never expires
    clock.now += 10_001
    assert coord.expire_transactional_ids(clock.now) == ["a"]
    assert "a" not in coord.txns and store.records["a"] is None
    assert coord.describe("a") == (ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, None)


def test_list_filters(coord, clock):
    init(coord, "a")
    pid, epoch = init(coord, "b")
    coord.add_partitions("b", pid, epoch, [TP])
    clock.now += 500
    err, unknown, found = coord.list_transactions(["Ongoing", "Bogus"], [])
    assert err is ErrorCode.NONE and unknown == ["Bogus"]
    assert [m.transactional_id for m in found] == ["b"]
    assert [m.transactional_id for m in coord.list_transactions([], [pid])[2]] == ["b"]
    assert sorted(m.transactional_id
                  for m in coord.list_transactions([], [], duration_ms=499)[2]) == ["a", "b"]
    assert [m.transactional_id for m in coord.list_transactions([], [], duration_ms=500)[2]
            ] == ["a"]  # Empty: start -1, "running" forever as Kafka computes it
    assert [m.transactional_id for m in coord.list_transactions([], [], pattern="a")[2]] == ["a"]
    assert coord.list_transactions([], [], pattern="(")[0] is ErrorCode.INVALID_REGULAR_EXPRESSION


def test_illegal_transitions():
    meta = TransactionMetadata("x", 1, producer_epoch=0)
    with pytest.raises(IllegalTransition):
        meta.prepare_abort_or_commit(S.PREPARE_COMMIT, 0)  # Empty -> PrepareCommit
    transit = meta.prepare_add_partitions({TP}, 5)
    with pytest.raises(IllegalTransition):
        meta.prepare_add_partitions({TP}, 5)  # already pending
    meta.complete_transition(transit)
    assert meta.state is S.ONGOING and meta.txn_start_timestamp == 5


def test_log_record_round_trip():
    meta = TransactionMetadata("x", 7, producer_epoch=3, txn_timeout_ms=900)
    transit = meta.prepare_add_partitions({TP, ("u", 2)}, 42)
    key, value = key_bytes("x"), value_bytes(transit)
    assert key[:2] == b"\x00\x00" and value[:2] == b"\x00\x00"
    txn_id, loaded = decode_record(key, value)
    assert txn_id == "x" and loaded is not None
    assert (loaded.producer_id, loaded.producer_epoch, loaded.state, loaded.partitions,
            loaded.txn_start_timestamp, loaded.txn_timeout_ms) == (
        7, 3, S.ONGOING, {TP, ("u", 2)}, 42, 900)
    assert decode_record(key, None) == ("x", None)
