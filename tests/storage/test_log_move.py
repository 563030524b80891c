"""Moving a partition's log between log dirs (`storage.log_move`, `LogManager.begin_move` /
`finish_move`): data appended before, during and after the bulk copy survives; retention
during the move; the old dir is renamed `-delete`; crash recovery of `-future` dirs."""

from __future__ import annotations

import os

import pytest

from storage.config import LogConfig
from storage.errors import StorageError
from storage.manager import (
    RECOVERY_POINT_CHECKPOINT_FILE,
    LogManager,
    TopicPartition,
    read_offset_checkpoint,
)
from tests.storage.helpers import FakeClock, batch, check_partition_dir, parse_log_file

CFG = LogConfig(segment_bytes=2048, index_interval_bytes=100, file_delete_delay_ms=1000)


def manager(dirs, clock=None) -> LogManager:
    return LogManager([str(d) for d in dirs], CFG, clock=clock or FakeClock(),
                      cluster_id="c1", node_id=3)


def offsets_in(log) -> list[int]:
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    return [b.base_offset + i for b in parse_log_file(data) for i in range(b.last_offset_delta + 1)]


def copied(tmp_path, batches: int, value_size: int = 100):
    """A manager over dirs a and b, partition t-0 in a with `batches` batches of 3 records,
    and a move to b whose bulk copy is done: (a, b, manager, log, move)."""
    a, b = tmp_path / "a", tmp_path / "b"
    m = manager([a, b])
    log = m.get_or_create_log("t", 0)
    for _ in range(batches):
        log.append(batch(3, value_size=value_size))
    move = m.begin_move("t", 0, str(b))
    assert move is not None
    move.copy_bulk()
    return a, b, m, log, move


def test_move_keeps_every_record_appended_before_during_and_after(tmp_path):
    clock = FakeClock()
    a, b = tmp_path / "a", tmp_path / "b"
    m = manager([a, b], clock)
    log = m.get_or_create_log("t", 0)
    assert m.log_dir_of("t", 0) == str(a)
    for _ in range(20):
        log.append(batch(3, value_size=100))  # several segments
    assert len(log.segments) > 2
    move = m.begin_move("t", 0, str(b))
    assert move is not None and m.moves() == [move]
    assert os.path.basename(move.future_path).startswith("t-0.")
    assert move.future_path.endswith("-future")
    log.append(batch(2))  # after the roll, before the bulk copy
    move.copy_bulk()
    assert move.size > 0
    log.append(batch(2))  # during the copy
    moved = m.finish_move(move)
    assert moved is not None and moved is not log and log.closed
    assert m.get_log("t", 0) is moved and m.moves() == []
    assert m.log_dir_of("t", 0) == str(b)
    assert moved.dir == str(b / "t-0")
    assert moved.log_end_offset == 64 and moved.high_watermark == 64
    assert offsets_in(moved) == list(range(64))
    assert not (a / "t-0").exists()
    doomed = [n for n in os.listdir(a) if n.startswith("t-0.")]
    assert len(doomed) == 1 and doomed[0].endswith("-delete")
    assert not [n for n in os.listdir(b) if n.endswith("-future")]
    assert TopicPartition("t", 0) in read_offset_checkpoint(
        str(b / RECOVERY_POINT_CHECKPOINT_FILE))
    assert TopicPartition("t", 0) not in read_offset_checkpoint(
        str(a / RECOVERY_POINT_CHECKPOINT_FILE))
    moved.append(batch(1))  # the moved log takes appends
    assert moved.log_end_offset == 65
    clock.advance(CFG.file_delete_delay_ms)
    m.delete_pending()
    assert not [n for n in os.listdir(a) if n.startswith("t-0.")]
    m.shutdown()
    check_partition_dir(b / "t-0")
    m2 = manager([a, b], clock)
    assert m2.log_dir_of("t", 0) == str(b)
    assert offsets_in(m2.get_log("t", 0)) == list(range(65))
    m2.shutdown()


def test_retention_during_the_bulk_copy_is_reconciled(tmp_path):
    _, b, m, log, move = copied(tmp_path, 20)
    first = log.segments[0].base_offset
    log.delete_records(log.segments[2].base_offset)  # whole segments go
    m.delete_pending(10**15)
    start = log.log_start_offset
    moved = m.finish_move(move)
    assert moved is not None
    assert moved.log_start_offset == start > first
    assert offsets_in(moved) == list(range(moved.segments[0].base_offset, 60))
    names = set(os.listdir(b / "t-0"))
    assert f"{first:020d}.log" not in names
    m.shutdown()


def test_same_dir_unknown_dir_and_a_second_move(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    m = manager([a, b])
    m.get_or_create_log("t", 0)
    assert m.begin_move("t", 0, str(a)) is None
    with pytest.raises(ValueError):
        m.begin_move("t", 0, str(tmp_path / "c"))
    with pytest.raises(KeyError):
        m.begin_move("nope", 0, str(b))
    move = m.begin_move("t", 0, str(b))
    assert move is not None
    with pytest.raises(StorageError):
        m.begin_move("t", 0, str(b))
    m.abort_move(move)
    assert not os.path.exists(move.future_path) and m.moves() == []
    assert m.log_dir_of("t", 0) == str(a)
    m.shutdown()


def test_a_deleted_partition_discards_its_copy(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    m = manager([a, b])
    log = m.get_or_create_log("t", 0)
    log.append(batch(2))
    move = m.begin_move("t", 0, str(b))
    assert move is not None
    move.copy_bulk()
    m.delete_log("t", 0)
    assert m.finish_move(move) is None
    assert not os.path.exists(move.future_path)
    assert m.get_log("t", 0) is None
    m.shutdown()


def test_startup_removes_a_partial_future_copy(tmp_path):
    a, b, m, _, move = copied(tmp_path, 10)
    m.close_without_shutdown()  # crash before the swap
    m2 = manager([a, b])
    assert not os.path.exists(move.future_path)
    assert m2.log_dir_of("t", 0) == str(a)
    assert offsets_in(m2.get_log("t", 0)) == list(range(30))
    m2.shutdown()


def test_startup_promotes_a_complete_future_copy(tmp_path):
    """A crash between the two renames: the current dir is `-delete` already, so the
    future dir is the partition's log."""
    a, b, m, log, move = copied(tmp_path, 10)
    log.close(flush=True)
    move.copy_rest()
    os.rename(log.dir, str(a / "t-0.0123456789abcdef0123456789abcdef-delete"))
    m.close_without_shutdown()
    m2 = manager([a, b])
    assert m2.log_dir_of("t", 0) == str(b)
    assert (b / "t-0").is_dir() and not os.path.exists(move.future_path)
    assert offsets_in(m2.get_log("t", 0)) == list(range(30))
    m2.shutdown()
