"""Partition transaction state: open transactions, the last stable offset, the `.txnindex`.

Transactional batches and COMMIT/ABORT markers are appended through the storage API
(`PartitionLog.append`, `append_marker`); the tests check the LSO, the aborted
transactions a read_committed fetch gets, the index files' bytes, and what recovery
(clean and unclean), truncation, retention and the cleaner's swap do with them.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from protocol.records import Record, build_batch
from storage import LogConfig, PartitionLog
from storage.cleaner import clean_log
from storage.producer_state import InvalidProducerEpoch, TransactionCoordinatorFenced
from storage.txn_index import ABORTED_TXN_SIZE, AbortedTxn, TransactionIndex

BASE_TS = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = BASE_TS

    def __call__(self) -> int:
        return self.now


def txn_batch(pid: int, count: int, *, epoch: int = 0, seq: int = 0,
              transactional: bool = True) -> bytes:
    return build_batch([Record(i, BASE_TS, b"k%d" % i, b"v%d" % i, []) for i in range(count)],
                       producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       is_transactional=transactional)


def plain(count: int = 1) -> bytes:
    return build_batch([(b"k", b"v")] * count, base_timestamp=BASE_TS)


def open_log(directory: Path, clean: bool = True, **config: Any) -> PartitionLog:
    return PartitionLog.open(directory, LogConfig(**config), clock=Clock(),
                             had_clean_shutdown=clean)


def txn_files(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if ".txnindex" in n)


# --------------------------------------------------------------------- LSO and markers


def test_last_stable_offset_follows_open_transactions(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(plain(2))                           # 0-1
    assert (log.last_stable_offset, log.first_unstable_offset) == (2, None)
    log.append(txn_batch(1, 3))                    # 2-4: producer 1 opens at 2
    log.append(txn_batch(2, 2))                    # 5-6: producer 2 opens at 5
    log.append(txn_batch(1, 1, seq=3))             # 7: same transaction
    assert log.ongoing_transactions() == {1: 2, 2: 5}
    assert (log.last_stable_offset, log.first_unstable_offset, log.high_watermark) == (2, 2, 8)
    info = log.append_marker(1, 0, 5, commit=True)  # 8
    assert (info.first_offset, info.record_count) == (8, 1)
    assert log.ongoing_transactions() == {2: 5}
    assert log.last_stable_offset == 5
    log.append_marker(2, 0, 5, commit=False)        # 9
    assert (log.last_stable_offset, log.first_unstable_offset) == (10, None)
    assert log.aborted_transactions() == [AbortedTxn(2, 5, 9, 10)]


def test_abort_records_the_next_open_transaction_as_its_lso(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(txn_batch(1, 2))                    # 0-1
    log.append(txn_batch(2, 2))                    # 2-3
    log.append_marker(1, 0, 0, commit=False)        # 4: producer 2 still open at 2
    log.append_marker(2, 0, 0, commit=False)        # 5
    assert log.aborted_transactions() == [AbortedTxn(1, 0, 4, 2), AbortedTxn(2, 2, 5, 6)]
    # Kafka's entry layout: version int16 0, producer id, first, last, LSO (int64s).
    [name] = txn_files(tmp_path)
    data = (tmp_path / name).read_bytes()
    assert len(data) == 2 * ABORTED_TXN_SIZE == 68
    assert struct.unpack(">hqqqq", data[:34]) == (0, 1, 0, 4, 2)


def test_marker_without_open_transaction_is_written_and_completes_nothing(
        tmp_path: Path) -> None:
    log = open_log(tmp_path)
    info = log.append_marker(9, 3, 1, commit=False)
    assert (info.first_offset, log.log_end_offset, log.last_stable_offset) == (0, 1, 1)
    assert log.aborted_transactions() == [] and txn_files(tmp_path) == []
    assert log.producer_state.entry(9).coordinator_epoch == 1  # type: ignore[union-attr]


def test_marker_epoch_checks(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(txn_batch(1, 1, epoch=4))
    with pytest.raises(InvalidProducerEpoch):
        log.append_marker(1, 3, 0, commit=True)
    log.append_marker(1, 4, 7, commit=True)
    log.append(txn_batch(1, 1, epoch=4, seq=1))
    with pytest.raises(TransactionCoordinatorFenced) as fenced:
        log.append_marker(1, 4, 6, commit=True)
    assert fenced.value.error_code == 52
    assert log.ongoing_transactions() == {1: 2}  # nothing written by the refused markers
    assert log.log_end_offset == 3


def test_collect_aborted_transactions_for_a_fetch_range(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=200)
    log.append(txn_batch(1, 2))                    # 0-1
    log.append_marker(1, 0, 0, commit=False)        # 2
    log.append(txn_batch(2, 2))                    # 3-4
    log.append(plain())                            # 5
    log.append_marker(2, 0, 0, commit=True)         # 6
    log.append(txn_batch(3, 1))                    # 7
    log.append_marker(3, 0, 0, commit=False)        # 8
    assert len(log.segments) > 2  # the entries live in several segments
    assert log.collect_aborted_transactions(0, 9) == [(1, 0), (3, 7)]
    assert log.collect_aborted_transactions(3, 7) == []
    assert log.collect_aborted_transactions(2, 3) == [(1, 0)]
    assert log.collect_aborted_transactions(8, 9) == [(3, 7)]
    # A read that returns batches collects over exactly what it returns.
    info = log.read(0, 1 << 20, collect_aborted=True, single_segment=True)
    assert info.aborted_transactions == [(1, 0)]
    assert log.read(9, 100, collect_aborted=True).aborted_transactions == []
    assert log.read(0, 100).aborted_transactions is None


def test_read_committed_limit_is_the_lso(tmp_path: Path) -> None:
    log = open_log(tmp_path)
    log.append(plain(2))
    log.append(txn_batch(1, 2))
    log.append(plain(1))
    lso = log.last_stable_offset
    assert lso == 2
    assert len(log.read(0, 1 << 20, max_offset=lso).slices[0].read()) == len(plain(2))


# ------------------------------------------------------------------ files and recovery


def _aborted_log(directory: Path) -> PartitionLog:
    log = open_log(directory, segment_bytes=250)
    log.append(txn_batch(1, 2))                    # 0-1
    log.append(txn_batch(2, 1))                    # 2
    log.append_marker(1, 0, 0, commit=False)        # 3
    log.append(plain())                            # 4
    log.append_marker(2, 0, 0, commit=False)        # 5
    log.append(txn_batch(3, 2))                    # 6-7: left open
    return log


EXPECTED_ABORTS = [AbortedTxn(1, 0, 3, 2), AbortedTxn(2, 2, 5, 6)]


def test_clean_restart_keeps_index_and_open_transactions(tmp_path: Path) -> None:
    _aborted_log(tmp_path).close()
    log = open_log(tmp_path)
    assert log.aborted_transactions() == EXPECTED_ABORTS
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({3: 6}, 6)
    assert log.index_rebuilds == []


def test_unclean_restart_rebuilds_missing_index(tmp_path: Path) -> None:
    log = _aborted_log(tmp_path)
    names = txn_files(tmp_path)
    assert names
    log.close()
    for name in names:
        os.unlink(tmp_path / name)
    log = open_log(tmp_path, clean=False)
    assert log.aborted_transactions() == EXPECTED_ABORTS
    assert txn_files(tmp_path) == names
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({3: 6}, 6)


def test_unclean_restart_with_torn_tail_drops_lost_aborts(tmp_path: Path) -> None:
    log = _aborted_log(tmp_path)
    log.close()
    # Cut the log inside the second ABORT marker (offset 5): it and what follows go.
    seg = log.segments[-1]
    marker_seg = next(s for s in log.segments if s.base_offset <= 5 <= s.read_next_offset())
    path = marker_seg.log_path
    pos = next(p for p, h in _headers(path) if h[0] == 5)
    os.truncate(path, pos + 20)
    for later in log.segments:
        if later.base_offset > marker_seg.base_offset:
            os.unlink(later.log_path)
    del seg
    log = open_log(tmp_path, clean=False)
    assert log.log_end_offset == 5
    assert log.aborted_transactions() == [AbortedTxn(1, 0, 3, 2)]
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({2: 2}, 2)


def _headers(path: str) -> list[tuple[int, tuple[int, int]]]:
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        out.append((pos, (base, length)))
        pos += 12 + length
    return out


@pytest.mark.parametrize("damage", ["below-base", "torn", "version"])
def test_corrupt_index_is_rebuilt_on_load(tmp_path: Path, damage: str) -> None:
    log = _aborted_log(tmp_path)
    log.close()
    name = txn_files(tmp_path)[-1]
    path = tmp_path / name
    base = int(name.split(".")[0])
    if damage == "below-base":
        path.write_bytes(struct.pack(">hqqqq", 0, 9, 0, base - 1, base) + path.read_bytes())
    elif damage == "torn":
        path.write_bytes(path.read_bytes() + b"\x00\x00\x00")
    else:
        path.write_bytes(struct.pack(">hqqqq", 1, 9, base, base, base) + path.read_bytes())
    log = open_log(tmp_path)
    assert any(name in r for r in log.index_rebuilds)
    assert log.aborted_transactions() == EXPECTED_ABORTS


def test_truncation_drops_index_entries_and_reopens_transactions(tmp_path: Path) -> None:
    log = _aborted_log(tmp_path)
    log.truncate_to(5)  # the second ABORT goes
    assert log.aborted_transactions() == [AbortedTxn(1, 0, 3, 2)]
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({2: 2}, 2)
    log.truncate_to(3)
    assert log.aborted_transactions() == []
    assert log.ongoing_transactions() == {1: 0, 2: 2}
    log.truncate_fully_and_start_at(10)
    assert (log.ongoing_transactions(), log.last_stable_offset) == ({}, 10)
    assert txn_files(tmp_path) and all(n.endswith(".txnindex.deleted")
                                       for n in txn_files(tmp_path))


def test_retention_deletes_index_with_its_segment(tmp_path: Path) -> None:
    log = open_log(tmp_path, segment_bytes=150, file_delete_delay_ms=60_000)
    log.append(txn_batch(1, 1))
    log.append_marker(1, 0, 0, commit=False)
    [name] = txn_files(tmp_path)
    for _ in range(4):
        log.append(plain())
    log.delete_records(log.high_watermark)
    assert name not in os.listdir(tmp_path)
    assert name + ".deleted" in os.listdir(tmp_path)
    log.delete_pending_files(log._clock() + 60_000)
    assert txn_files(tmp_path) == []
    assert log.aborted_transactions() == []


def test_cleaner_swap_keeps_the_aborted_transactions(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path, LogConfig(segment_bytes=200, cleanup_policy=("compact",)),
                            clock=Clock())
    log.append(txn_batch(1, 2))
    log.append_marker(1, 0, 0, commit=False)
    log.append(txn_batch(2, 1))
    log.append_marker(2, 0, 0, commit=False)
    for _ in range(4):
        log.append(build_batch([(b"same", b"x")], base_timestamp=BASE_TS))
    before = log.aborted_transactions()
    assert len(before) == 2 and len(log.segments) > 3
    stats = clean_log(log, BASE_TS)
    assert stats is not None and stats.segments_cleaned > 1
    assert log.aborted_transactions() == before
    live = [n for n in txn_files(tmp_path) if n.endswith(".txnindex")]
    assert live == [f"{s.base_offset:020d}.txnindex" for s in log.segments
                    if s.txn_index.entries]
    log.close()
    assert open_log(tmp_path).aborted_transactions() == before


def test_transaction_index_file_is_created_lazily(tmp_path: Path) -> None:
    index = TransactionIndex(str(tmp_path / "00000000000000000010.txnindex"), 10)
    assert (index.exists(), len(index)) == (False, 0)
    index.append(AbortedTxn(1, 3, 12, 13))
    with pytest.raises(ValueError):
        index.append(AbortedTxn(2, 4, 12, 13))
    index.append(AbortedTxn(2, 11, 14, 15))
    assert index.collect(13, 20) == ([AbortedTxn(2, 11, 14, 15)], False)
    assert index.collect(0, 12) == ([AbortedTxn(1, 3, 12, 13)], True)
    index.truncate_to(14)
    assert TransactionIndex(index.path, 10).entries == [AbortedTxn(1, 3, 12, 13)]


# ------------------------------------------------------------------ Kafka's own tool


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "apache-kafka"))


@pytest.mark.skipif(
    __import__("shutil").which("java") is None or __import__("shutil").which("mvn") is None,
    reason="Kafka's DumpLogSegments needs a JDK and Maven on the machine")
def test_dump_log_segments_reads_our_txnindex(tmp_path: Path) -> None:
    from apache_kafka import dump_log_segments

    log = open_log(tmp_path)
    log.append(txn_batch(7, 2))
    log.append(txn_batch(8, 1))
    log.append_marker(7, 0, 0, commit=False)
    log.append_marker(8, 0, 0, commit=False)
    log.close()
    [name] = txn_files(tmp_path)
    out = dump_log_segments([tmp_path / name])
    assert ("version: 0 producerId: 7 firstOffset: 0 lastOffset: 3 lastStableOffset: 2"
            in out), out
    assert ("version: 0 producerId: 8 firstOffset: 2 lastOffset: 4 lastStableOffset: 5"
            in out), out
