"""LogManager: Kafka's log-dir layout, checkpoints, clean shutdown, deletion, handle caps."""

from __future__ import annotations

import json
import os

import pytest

from storage.config import LogConfig
from storage.errors import InconsistentClusterId, StorageError
from storage.manager import (
    CLEAN_SHUTDOWN_FILE_NAME,
    LOG_START_OFFSET_CHECKPOINT_FILE,
    RECOVERY_POINT_CHECKPOINT_FILE,
    LogManager,
    MetaProperties,
    TopicPartition,
    read_offset_checkpoint,
    write_offset_checkpoint,
)
from storage.segment import Segment
from tests.storage.helpers import FakeClock, batch, check_partition_dir

CFG = LogConfig(segment_bytes=2048, index_interval_bytes=100, file_delete_delay_ms=1000)


def manager(dirs, clock=None, **kw):
    return LogManager(
        [str(d) for d in dirs], CFG, clock=clock or FakeClock(), cluster_id="c1", node_id=3, **kw
    )


def test_meta_properties_kraft_format(tmp_path):
    m = manager([tmp_path / "a"])
    text = (tmp_path / "a" / "meta.properties").read_text()
    props = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert props["version"] == "1" and props["cluster.id"] == "c1" and props["node.id"] == "3"
    assert len(props["directory.id"]) == 22 and not props["directory.id"].startswith("-")
    assert m.directory_ids[str(tmp_path / "a")] == props["directory.id"]
    m.shutdown()
    again = manager([tmp_path / "a"])
    assert again.directory_ids == m.directory_ids  # stable across restarts
    again.shutdown()
    with pytest.raises(InconsistentClusterId):
        LogManager([str(tmp_path / "a")], CFG, cluster_id="other", node_id=3)
    meta = MetaProperties.read(str(tmp_path / "a" / "meta.properties"))
    assert meta is not None and meta.cluster_id == "c1"


def test_dir_is_locked(tmp_path):
    m = manager([tmp_path / "a"])
    with pytest.raises(StorageError):
        manager([tmp_path / "a"])
    m.shutdown()
    manager([tmp_path / "a"]).shutdown()


def test_checkpoint_file_format(tmp_path):
    path = str(tmp_path / "cp")
    write_offset_checkpoint(path, {TopicPartition("b", 1): 7, TopicPartition("a-x", 0): 42})
    assert open(path).read() == "0\n2\na-x 0 42\nb 1 7\n"
    assert read_offset_checkpoint(path) == {TopicPartition("b", 1): 7, TopicPartition("a-x", 0): 42}
    assert read_offset_checkpoint(str(tmp_path / "missing")) == {}
    with open(path, "w") as f:
        f.write("1\n0\n")
    with pytest.raises(StorageError):
        read_offset_checkpoint(path)
    with open(path, "w") as f:
        f.write("0\n2\na 0 1\n")
    with pytest.raises(StorageError):
        read_offset_checkpoint(path)


def test_partitions_spread_over_dirs_with_fewest_partitions(tmp_path):
    m = manager([tmp_path / "a", tmp_path / "b"])
    for p in range(5):
        m.get_or_create_log("t", p)
    counts = {}
    for p in range(5):
        d = m.log_dir_of("t", p)
        counts[d] = counts.get(d, 0) + 1
        assert os.path.isdir(os.path.join(d, f"t-{p}"))
    assert sorted(counts.values()) == [2, 3]
    assert m.get_or_create_log("t", 0) is m.get_log("t", 0)
    m.shutdown()


def test_shutdown_writes_checkpoints_and_marker_and_restart_is_clean(tmp_path, monkeypatch):
    clock = FakeClock()
    m = manager([tmp_path / "a"], clock=clock)
    log = m.get_or_create_log("my-topic", 0)
    for _ in range(30):
        log.append(batch(2, value_size=100))
    log.delete_records(20)
    other = m.get_or_create_log("other", 1)
    other.append(batch(1))
    m.shutdown()
    d = tmp_path / "a"
    marker = json.loads((d / CLEAN_SHUTDOWN_FILE_NAME).read_text())
    assert marker == {"version": "0", "broker_epoch": "-1"}
    rp = read_offset_checkpoint(str(d / RECOVERY_POINT_CHECKPOINT_FILE))
    assert rp == {TopicPartition("my-topic", 0): 60, TopicPartition("other", 1): 1}
    ls = read_offset_checkpoint(str(d / LOG_START_OFFSET_CHECKPOINT_FILE))
    assert ls == {TopicPartition("my-topic", 0): 20}  # only logs past their first segment
    check_partition_dir(d / "my-topic-0")

    monkeypatch.setattr(Segment, "recover", lambda self: pytest.fail("recovered after clean stop"))
    m2 = manager([d], clock=clock)
    assert m2.had_clean_shutdown[str(d)]
    assert not (d / CLEAN_SHUTDOWN_FILE_NAME).exists()  # removed once loaded
    log2 = m2.get_log("my-topic", 0)
    assert (log2.log_start_offset, log2.log_end_offset) == (20, 60)
    assert m2.get_log("other", 1).log_end_offset == 1
    m2.shutdown()


def test_unclean_restart_recovers_from_checkpointed_recovery_point(tmp_path):
    clock = FakeClock()
    m = manager([tmp_path / "a"], clock=clock)
    log = m.get_or_create_log("t", 0)
    for _ in range(30):
        log.append(batch(2, value_size=100))
    log.flush()
    m.checkpoint_recovery_points()
    for _ in range(5):
        log.append(batch(2, value_size=100))
    m.close_without_shutdown()  # crash: no marker, no final checkpoint
    m2 = manager([tmp_path / "a"], clock=clock)
    assert not m2.had_clean_shutdown[str(tmp_path / "a")]
    log2 = m2.get_log("t", 0)
    assert log2.log_end_offset == 70
    assert log2.recovery_point == 60
    m2.shutdown()


def test_delete_log_renames_then_removes_after_delay(tmp_path):
    clock = FakeClock()
    m = manager([tmp_path / "a"], clock=clock)
    log = m.get_or_create_log("gone", 3)
    log.append(batch(1))
    assert m.delete_log("gone", 3)
    assert m.get_log("gone", 3) is None
    names = os.listdir(tmp_path / "a")
    doomed = [n for n in names if n.endswith("-delete")]
    assert len(doomed) == 1
    name = doomed[0]
    assert name.startswith("gone-3.") and len(name) == len("gone-3.") + 32 + len("-delete")
    assert m.cleanup_logs(clock.now + 999) == 0 and (tmp_path / "a" / name).exists()
    m.cleanup_logs(clock.now + 1000)
    assert not (tmp_path / "a" / name).exists()
    assert not m.delete_log("gone", 3)
    # a -delete dir found at startup is removed after the delay too
    os.makedirs(tmp_path / "a" / "x-0.0123456789abcdef0123456789abcdef-delete")
    m.shutdown()
    m2 = manager([tmp_path / "a"], clock=clock)
    assert m2.get_log("x", 0) is None and len(m2.pending_deletes()) == 1
    m2.delete_pending(clock.now + 1000)
    assert m2.pending_deletes() == []
    m2.shutdown()


def test_cleanup_logs_applies_retention(tmp_path):
    clock = FakeClock()
    m = LogManager(
        [str(tmp_path / "a")],
        LogConfig(segment_bytes=2048, retention_ms=1000, file_delete_delay_ms=0),
        clock=clock,
        cluster_id="c",
        node_id=1,
    )
    log = m.get_or_create_log("t", 0)
    for _ in range(30):
        log.append(batch(1, value_size=200))
    n = len(log.segments)
    assert m.cleanup_logs(clock.now) == 0
    assert m.cleanup_logs(clock.now + 10**13) == n
    assert log.log_start_offset == log.log_end_offset == 30
    m.shutdown()


def test_flush_dirty_logs(tmp_path):
    clock = FakeClock()
    m = LogManager(
        [str(tmp_path / "a")],
        LogConfig(segment_bytes=2048, flush_ms=1000),
        clock=clock,
        cluster_id="c",
        node_id=1,
    )
    log = m.get_or_create_log("t", 0)
    for _ in range(20):
        log.append(batch(1, value_size=200))
    # rolled segments are flushed right away, the active one after flush.ms
    assert m.flush_dirty_logs() == [TopicPartition("t", 0)]
    assert log.recovery_point == log.active_segment.base_offset
    clock.advance(1000)
    m.flush_dirty_logs()
    assert log.recovery_point == log.log_end_offset
    m.shutdown()


def test_handle_cache_bounds_open_descriptors(tmp_path):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    base = open_fds()
    m = LogManager(
        [str(tmp_path / "a")],
        LogConfig(segment_bytes=1 << 20),
        clock=FakeClock(),
        cluster_id="c",
        node_id=1,
        handle_cache_capacity=8,
    )
    for p in range(60):
        m.get_or_create_log("many", p).append(batch(1))
    assert len(m.handle_cache) <= 8
    assert open_fds() - base <= 8 * 4 + 2
    for p in range(60):  # every log still works after eviction
        log = m.get_log("many", p)
        assert log.read_bytes(0, 10**6)
        assert log.append(batch(1)).first_offset == 1
    m.shutdown()
    m2 = LogManager(
        [str(tmp_path / "a")],
        LogConfig(segment_bytes=1 << 20),
        clock=FakeClock(),
        cluster_id="c",
        node_id=1,
        handle_cache_capacity=8,
    )
    assert all(m2.get_log("many", p).log_end_offset == 2 for p in range(60))
    assert open_fds() - base <= 8 * 4 + 2
    m2.shutdown()
