"""Retention as the Kafka docs describe it: whole segments, oldest first, by the largest
record timestamp (or mtime) and by total size; never past the high watermark."""

from __future__ import annotations

import os

from storage.config import LogConfig
from storage.log import PartitionLog
from tests.storage.helpers import BASE_TS, FakeClock, batch

DAY = 86_400_000


def make(tmp_path, clock, **cfg):
    base = {"segment_bytes": 1024, "index_interval_bytes": 100, "file_delete_delay_ms": 0}
    base.update(cfg)
    return PartitionLog.open(tmp_path / "t-0", LogConfig(**base), clock=clock)


def fill(log, n, ts_of=lambda i: BASE_TS + i):
    for i in range(n):
        log.append(batch(1, value_size=200, ts=ts_of(i)))


def test_time_retention_uses_largest_timestamp(tmp_path):
    clock = FakeClock(BASE_TS)
    log = make(tmp_path, clock, retention_ms=DAY)
    fill(log, 12, ts_of=lambda i: BASE_TS + i * 1000)
    segs = log.segments
    assert len(segs) >= 3
    # nothing expired yet
    assert log.delete_old_segments(BASE_TS + DAY) == 0
    # expire exactly the first segment: its largest timestamp is what counts
    first_max = segs[0].max_timestamp_so_far()
    assert log.delete_old_segments(first_max + DAY) == 0  # not strictly greater
    assert log.delete_old_segments(first_max + DAY + 1) == 1
    assert log.log_start_offset == segs[1].base_offset
    assert not os.path.exists(segs[0].log_path)
    # everything expired: the active segment goes too, after a roll
    leo = log.log_end_offset
    n = len(log.segments)
    assert log.delete_old_segments(BASE_TS + 10 * DAY) == n
    assert log.log_start_offset == leo == log.log_end_offset
    assert [s.base_offset for s in log.segments] == [leo]
    assert log.append(batch(1)).first_offset == leo


def test_future_timestamps_are_not_deleted(tmp_path):
    clock = FakeClock(BASE_TS)
    log = make(tmp_path, clock, retention_ms=1000)
    fill(log, 10, ts_of=lambda i: BASE_TS + 10 * DAY)
    assert log.delete_old_segments(BASE_TS + 5000) == 0


def test_segments_without_timestamps_use_mtime(tmp_path):
    clock = FakeClock(BASE_TS)
    log = make(tmp_path, clock, retention_ms=DAY)
    fill(log, 10, ts_of=lambda i: -1)
    old = log.segments[0]
    assert old.largest_record_timestamp() is None
    t = (BASE_TS - 2 * DAY) / 1000
    os.utime(old.log_path, (t, t))
    assert log.delete_old_segments(BASE_TS) == 1
    assert log.log_start_offset == log.segments[0].base_offset


def test_size_retention(tmp_path):
    clock = FakeClock()
    log = make(tmp_path, clock, retention_bytes=2000, retention_ms=-1)
    fill(log, 20)
    total = log.size_in_bytes()
    sizes = [s.size for s in log.segments]
    deleted = log.delete_old_segments()
    # delete oldest while (size over the limit) - segment >= 0
    diff, expect = total - 2000, 0
    for s in sizes:
        if diff - s >= 0:
            diff -= s
            expect += 1
        else:
            break
    assert deleted == expect > 0
    assert log.size_in_bytes() >= 2000 - max(sizes)
    assert log.delete_old_segments() == 0


def test_retention_disabled(tmp_path):
    log = make(tmp_path, FakeClock(), retention_ms=-1, retention_bytes=-1)
    fill(log, 20)
    assert log.delete_old_segments(BASE_TS + 1000 * DAY) == 0


def test_never_past_the_high_watermark(tmp_path):
    clock = FakeClock()
    log = make(tmp_path, clock, retention_ms=1)
    fill(log, 12)
    log.update_high_watermark(log.segments[1].base_offset)
    assert log.delete_old_segments(BASE_TS + DAY) == 1  # only the segment below the HW
    assert log.log_start_offset == log.segments[0].base_offset <= log.high_watermark


def test_compact_only_topics_keep_old_segments(tmp_path):
    log = make(tmp_path, FakeClock(), retention_ms=1, cleanup_policy=("compact",))
    fill(log, 12)
    assert log.delete_old_segments(BASE_TS + DAY) == 0
    log.delete_records(log.segments[2].base_offset)
    assert log.delete_old_segments(BASE_TS + DAY) == 0  # already deleted by delete_records
    assert log.segments[0].base_offset == log.log_start_offset


def test_deleted_files_wait_for_file_delete_delay(tmp_path):
    clock = FakeClock(BASE_TS)
    log = make(tmp_path, clock, retention_ms=DAY, file_delete_delay_ms=60000)
    fill(log, 12)
    first = log.segments[0]
    name = os.path.basename(first.log_path)
    clock.advance(2 * DAY)
    assert log.delete_old_segments() > 0
    d = tmp_path / "t-0"
    assert (d / (name + ".deleted")).exists() and not (d / name).exists()
    assert log.delete_pending_files(clock.now + 59999) == 0
    assert (d / (name + ".deleted")).exists()
    assert log.delete_pending_files(clock.now + 60000) > 0
    assert not any(n.endswith(".deleted") for n in os.listdir(d))
