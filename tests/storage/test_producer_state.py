"""Idempotent producer state: the checks, Kafka's snapshot files, and how the partition log
keeps the state through rolls, restarts (clean and not), truncation and deletion."""

from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path

import pytest
from crc32c import crc32c

from protocol.records import ControlType, build_batch, build_control_batch
from storage import LogConfig, PartitionLog
from storage.producer_state import (
    AppendOrigin,
    BatchMetadata,
    CorruptSnapshot,
    DataBatch,
    InvalidProducerEpoch,
    InvalidTxnState,
    OutOfOrderSequence,
    ProducerStateEntry,
    ProducerStateManager,
    TransactionCoordinatorFenced,
    decode_snapshot,
    encode_snapshot,
    read_snapshot,
)
from tests.storage.helpers import BASE_TS, FakeClock

pytestmark = pytest.mark.timeout(60)

PID = 1000


def data(seq: int, n: int = 1, *, epoch: int = 0, first: int = 0, pid: int = PID,
         txn: bool = False, ts: int = BASE_TS) -> DataBatch:
    last_seq = (seq + n - 1) % 2**31
    return DataBatch(pid, epoch, seq, last_seq, first, first + n - 1, ts, txn)


def apply(state: ProducerStateManager, *batches: DataBatch,
          origin: AppendOrigin = AppendOrigin.CLIENT) -> None:
    pending = state.prepare(origin)
    for b in batches:
        pending.append(b)
    pending.commit()


# -- the checks ------------------------------------------------------------------------


def test_sequences_follow_each_other(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    apply(state, data(0, 3, first=0))
    apply(state, data(3, 2, first=3))
    entry = state.entry(PID)
    assert entry is not None and (entry.producer_epoch, entry.last_seq) == (0, 4)
    with pytest.raises(OutOfOrderSequence, match="6 .incoming seq. number., 4 .current end"):
        apply(state, data(6, first=5))
    with pytest.raises(OutOfOrderSequence):
        apply(state, data(4, first=5))
    assert state.entry(PID).last_seq == 4  # type: ignore[union-attr]  # nothing changed


def test_duplicates_are_the_last_five_batches(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    for i in range(7):
        apply(state, data(2 * i, 2, first=10 + 2 * i))
    assert state.find_duplicate(PID, 0, 0, 1) is None  # batch 0 and 1 fell out
    assert state.find_duplicate(PID, 0, 2, 3) is None
    assert state.find_duplicate(PID, 0, 4, 5) == BatchMetadata(5, 15, 1, BASE_TS)
    assert state.find_duplicate(PID, 0, 12, 13) is not None
    assert state.find_duplicate(PID, 0, 12, 12) is None  # the exact range only
    assert state.find_duplicate(PID, 1, 12, 13) is None  # and the same epoch


def test_epochs(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    apply(state, data(0, 2, epoch=3))
    with pytest.raises(InvalidProducerEpoch, match="is 2, which is smaller than the last seen"):
        apply(state, data(2, epoch=2))
    with pytest.raises(OutOfOrderSequence, match="new epoch"):
        apply(state, data(2, epoch=4))
    apply(state, data(0, epoch=4, first=2))
    entry = state.entry(PID)
    assert entry is not None and (entry.producer_epoch, len(entry.batches)) == (4, 1)
    # Replaying a log never fails: an old epoch is only logged.
    apply(state, data(7, epoch=1, first=3), origin=AppendOrigin.REPLICATION)


def test_unknown_producer_and_wrapping_sequences(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    apply(state, data(2**31 - 2, 3))  # unknown producer: any sequence; wraps to 0
    assert state.entry(PID).last_seq == 0  # type: ignore[union-attr]
    apply(state, data(1, first=3))
    assert state.find_duplicate(PID, 0, 2**31 - 2, 0) is not None


def test_transactions_in_the_state(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path)
    apply(state, data(0, txn=True, first=5))
    assert state.has_ongoing_transaction(PID, 0)
    with pytest.raises(InvalidTxnState, match="Expected transactional write"):
        apply(state, data(1, first=6))
    marker = DataBatch(PID, 0, -1, -1, 6, 6, BASE_TS, True, is_control=True, marker=(True, 4))
    apply(state, marker, origin=AppendOrigin.COORDINATOR)
    entry = state.entry(PID)
    assert entry is not None
    assert (entry.current_txn_first_offset, entry.coordinator_epoch) == (None, 4)
    stale = DataBatch(PID, 0, -1, -1, 7, 7, BASE_TS, True, is_control=True, marker=(False, 3))
    with pytest.raises(TransactionCoordinatorFenced, match="zombie") as fenced:
        apply(state, stale, origin=AppendOrigin.COORDINATOR)
    assert fenced.value.error_code == 52  # TRANSACTION_COORDINATOR_FENCED, as Kafka


def test_expiry(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path, producer_id_expiration_ms=1000)
    apply(state, data(0, ts=BASE_TS), data(0, pid=2, ts=BASE_TS + 500, txn=True))
    assert state.remove_expired_producers(BASE_TS + 999) == 0
    assert state.remove_expired_producers(BASE_TS + 1000) == 1
    # A producer with an open transaction never expires.
    assert state.remove_expired_producers(BASE_TS + 10**9) == 0
    assert list(state.producers) == [2]


# -- snapshot files --------------------------------------------------------------------


def test_snapshot_layout_is_kafkas(tmp_path: Path) -> None:
    entry = ProducerStateEntry(42, 3, 7, BASE_TS, 99)
    entry.batches.append(BatchMetadata(12, 120, 2, BASE_TS))
    empty = ProducerStateEntry(5, 1, -1, BASE_TS - 1)
    raw = encode_snapshot([entry, empty])
    # ProducerStateManager.PID_SNAPSHOT_MAP_SCHEMA, written independently here.
    body = struct.pack(">i", 2)
    body += struct.pack(">qhiqiqiq", 42, 3, 12, 120, 2, BASE_TS, 7, 99)
    body += struct.pack(">qhiqiqiq", 5, 1, -1, -1, 0, BASE_TS - 1, -1, -1)
    assert raw == struct.pack(">hI", 1, crc32c(body)) + body
    decoded = decode_snapshot(raw)
    assert [(e.producer_id, e.producer_epoch, e.coordinator_epoch, e.last_timestamp,
             e.current_txn_first_offset, list(e.batches)) for e in decoded] == [
        (42, 3, 7, BASE_TS, 99, [BatchMetadata(12, 120, 2, BASE_TS)]),
        (5, 1, -1, BASE_TS - 1, None, []),
    ]


def test_corrupt_snapshots_are_refused() -> None:
    good = encode_snapshot([ProducerStateEntry(1, 0, -1, BASE_TS)])
    with pytest.raises(CorruptSnapshot, match="CRC"):
        decode_snapshot(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(CorruptSnapshot, match="version 2"):
        decode_snapshot(b"\x00\x02" + good[2:])
    with pytest.raises(CorruptSnapshot):
        decode_snapshot(good[:10])


def test_kafka_reads_our_snapshots(tmp_path: Path) -> None:
    """Kafka's DumpLogSegments reads a snapshot we wrote (needs a JDK and the jars)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "apache-kafka"))
    from apache_kafka import dump_log_segments  # fetches Kafka's jars once if missing

    if shutil.which("java") is None or shutil.which("mvn") is None:
        pytest.skip("Kafka's DumpLogSegments needs a JDK, and Maven to fetch its jars")
    log = PartitionLog.open(tmp_path / "t-0", LogConfig(), topic="t", partition=0)
    log.append(build_batch([(b"k", b"v", [], BASE_TS)] * 3, producer_id=42, producer_epoch=3,
                           base_sequence=10))
    log.close()
    out = dump_log_segments([str(tmp_path / "t-0" / "00000000000000000003.snapshot")])
    assert (f"producerId: 42 producerEpoch: 3 coordinatorEpoch: -1 currentTxnFirstOffset: "
            f"OptionalLong.empty lastTimestamp: {BASE_TS} firstSequence: 10 lastSequence: 12 "
            f"lastOffset: 2 offsetDelta: 2 timestamp: {BASE_TS}") in out


# -- the partition log -----------------------------------------------------------------


def idem(seq: int, n: int = 1, *, pid: int = PID, epoch: int = 0, ts: int = BASE_TS) -> bytes:
    return build_batch([(b"k", b"v" * 100, [], ts)] * n, producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq)


def open_log(path: Path, clock: FakeClock, *, clean: bool = True, **config: int
             ) -> PartitionLog:
    return PartitionLog.open(path, LogConfig(**config), clock=clock,  # type: ignore[arg-type]
                             topic="t", partition=0,
                             had_clean_shutdown=clean)


def snapshots(path: Path) -> list[int]:
    return sorted(int(n[:20]) for n in os.listdir(path) if n.endswith(".snapshot"))


def test_log_append_duplicates_and_errors(tmp_path: Path) -> None:
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    first = log.append(idem(0, 3))
    assert (first.first_offset, first.duplicate) == (0, False)
    dup = log.append(idem(0, 3))
    assert (dup.first_offset, dup.last_offset, dup.log_append_time, dup.duplicate) == (
        0, 2, BASE_TS, True)
    assert log.log_end_offset == 3
    with pytest.raises(OutOfOrderSequence):
        log.append(idem(5))
    assert log.log_end_offset == 3
    # Control batches and replication are not sequence-checked.
    log.append(idem(9), origin=AppendOrigin.REPLICATION)
    assert log.log_end_offset == 4
    log.close()


def test_snapshots_at_roll_and_clean_shutdown(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock, segment_bytes=1024)
    for seq in range(0, 30, 3):
        log.append(idem(seq, 3))
    bases = [s.base_offset for s in log.segments]
    assert len(bases) > 2
    assert snapshots(path) == bases[1:]  # one per roll, named after the new segment
    first_roll = read_snapshot(str(path / f"{bases[1]:020d}.snapshot"))
    assert [e.last_seq for e in first_roll] == [bases[1] - 1]
    log.close()
    assert snapshots(path)[-1] == 30
    reopened = open_log(path, clock)
    entry = reopened.producer_state.entry(PID)
    assert entry is not None and entry.last_seq == 29
    assert reopened.append(idem(27, 3)).duplicate
    assert reopened.append(idem(30)).first_offset == 30
    reopened.close()


def test_unclean_restart_rebuilds_from_the_log(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock, segment_bytes=1024)
    for seq in range(0, 30, 3):
        log.append(idem(seq, 3))
    log.append(idem(0, 2, pid=7))
    log.release_handles()  # a crash: no final snapshot
    assert 32 not in snapshots(path)
    reopened = open_log(path, clock, clean=False, segment_bytes=1024)
    assert reopened.producer_state.entry(PID).last_seq == 29  # type: ignore[union-attr]
    assert reopened.producer_state.entry(7).last_seq == 1  # type: ignore[union-attr]
    assert reopened.append(idem(0, 2, pid=7)).duplicate
    assert 32 in snapshots(path)
    reopened.close()


def test_replay_without_snapshots_restores_five_batches(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock)
    for seq in range(0, 12, 2):
        log.append(idem(seq, 2))
    log.release_handles()
    assert snapshots(path) == []
    reopened = open_log(path, clock, clean=False)
    # A snapshot keeps only each producer's last batch; a replay of the log keeps five.
    entry = reopened.producer_state.entry(PID)
    assert entry is not None and [b.first_seq for b in entry.batches] == [2, 4, 6, 8, 10]
    assert reopened.append(idem(4, 2)).duplicate
    reopened.close()


def test_corrupt_latest_snapshot_falls_back(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock)
    log.append(idem(0, 2))
    log.append(idem(2, 2))
    log.close()
    snap = path / "00000000000000000004.snapshot"
    snap.write_bytes(snap.read_bytes()[:-1] + b"\x00")
    reopened = open_log(path, clock)
    assert reopened.producer_state.entry(PID).last_seq == 3  # type: ignore[union-attr]
    assert reopened.append(idem(0, 2)).duplicate  # rebuilt from the whole log
    reopened.close()


def test_old_producers_expire_on_load(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock)
    log.append(idem(0, ts=BASE_TS - 86_400_000))
    log.append(idem(0, pid=2))
    log.close()
    reopened = open_log(path, clock)
    assert list(reopened.producer_state.producers) == [2]
    clock.advance(86_400_000)
    assert reopened.remove_expired_producers() == 1
    reopened.close()


def test_truncation_rebuilds_the_state(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock, segment_bytes=1024)
    for seq in range(0, 30, 3):
        log.append(idem(seq, 3))
    later = [b for b in snapshots(path) if b > 12]
    assert later
    log.truncate_to(12)
    assert log.log_end_offset == 12
    assert all(s <= 12 for s in snapshots(path))
    assert log.producer_state.entry(PID).last_seq == 11  # type: ignore[union-attr]
    assert log.append(idem(12, 3)).first_offset == 12
    log.truncate_fully_and_start_at(100)
    assert log.producer_state.is_empty and snapshots(path) == []
    assert log.append(idem(5)).first_offset == 100  # the producer is unknown again
    log.close()


def test_deleted_segments_take_their_snapshots(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock, segment_bytes=1024, file_delete_delay_ms=0)
    for seq in range(0, 30, 3):
        log.append(idem(seq, 3))
    bases = [s.base_offset for s in log.segments]
    log.delete_records(bases[2])
    assert log.log_start_offset == bases[2]
    assert snapshots(path) == bases[2:]
    # The producers stay (Kafka keeps them until they expire).
    assert log.producer_state.entry(PID).last_seq == 29  # type: ignore[union-attr]
    assert log.append(idem(27, 3)).duplicate
    log.close()


def test_transaction_markers_replay(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock)
    txn = build_batch([(b"k", b"v", [], BASE_TS)], producer_id=PID, producer_epoch=0,
                      base_sequence=0, is_transactional=True)
    log.append(txn, origin=AppendOrigin.COORDINATOR)
    assert log.producer_state.has_ongoing_transaction(PID, 0)
    log.append(build_control_batch(ControlType.COMMIT, producer_id=PID, producer_epoch=0,
                                   coordinator_epoch=2, timestamp=BASE_TS),
               origin=AppendOrigin.COORDINATOR)
    log.release_handles()
    reopened = open_log(path, clock, clean=False)
    entry = reopened.producer_state.entry(PID)
    assert entry is not None
    assert (entry.current_txn_first_offset, entry.coordinator_epoch, entry.last_seq) == (
        None, 2, 0)
    reopened.close()


def test_stray_snapshots_are_removed(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "t-0"
    log = open_log(path, clock, segment_bytes=1024)
    for seq in range(0, 30, 3):
        log.append(idem(seq, 3))
    log.close()
    bases = [s.base_offset for s in log.segments]
    stray = path / f"{bases[1] + 1:020d}.snapshot"
    shutil.copy(path / f"{bases[1]:020d}.snapshot", stray)
    (path / "00000000000000000030.snapshot.tmp").write_bytes(b"torn")
    reopened = open_log(path, clock)
    assert not stray.exists()
    assert not (path / "00000000000000000030.snapshot.tmp").exists()
    assert snapshots(path) == [*bases[1:], 30]
    reopened.close()
