"""How an append reaches the `.log` file: one `pwritev` of patched headers and the caller's
untouched record bytes (`Segment._write`), never a write through a map.

Checked against an independent reader of the file (`tests.storage.helpers.parse_log_file`
with CRCs) and against `protocol.records`' own in-place stamping.
"""

from __future__ import annotations

import os

import pytest

from protocol.records import TimestampType, build_batch, set_base_offset, set_log_append_time
from protocol.records import set_partition_leader_epoch as set_epoch
from storage.config import LogConfig
from storage.log import PartitionLog
from tests.storage.helpers import BASE_TS, FakeClock, batch, parse_log_file, read_file


def _open(tmp_path, **config) -> PartitionLog:
    config.setdefault("segment_bytes", 4 << 20)
    config.setdefault("segment_index_bytes", 64 << 10)
    return PartitionLog.open(str(tmp_path / "t-0"), LogConfig(**config), clock=FakeClock())


def _log_bytes(plog: PartitionLog) -> bytes:
    seg = plog.active_segment
    return read_file(seg.log_path)[: seg.size]


def test_the_callers_bytes_are_not_modified_and_the_file_has_the_patched_copy(tmp_path):
    plog = _open(tmp_path)
    plog.append(batch(2))
    data = bytearray(batch(3, value_size=50))
    original = bytes(data)
    info = plog.append(data, leader_epoch=7)
    assert bytes(data) == original  # offsets are patched in the written copy only
    expected = bytearray(original)
    set_base_offset(expected, 0, info.first_offset)
    set_epoch(expected, 0, 7)
    assert _log_bytes(plog).endswith(bytes(expected))
    (first, second) = parse_log_file(_log_bytes(plog), check_crc=True)
    assert (second.base_offset, second.leader_epoch) == (2, 7)
    plog.close(flush=False)


def test_log_append_time_header_matches_in_place_stamping(tmp_path):
    """The general path builds a stamped header (new CRC over the untouched records)
    instead of stamping a copy of the whole batch: same bytes as Kafka's setMaxTimestamp."""
    plog = _open(tmp_path)
    batches = [batch(3, value_size=40, ts=BASE_TS + i) for i in range(3)]
    data = b"".join(batches)
    info = plog.append(data, log_append_time=BASE_TS + 500, leader_epoch=2)
    expected = bytearray()
    offset = info.first_offset
    for b in batches:
        one = bytearray(b)
        set_base_offset(one, 0, offset)
        set_epoch(one, 0, 2)
        set_log_append_time(one, 0, BASE_TS + 500)
        expected += one
        offset += 3
    assert _log_bytes(plog) == bytes(expected)
    parsed = parse_log_file(_log_bytes(plog), check_crc=True)
    assert [p.max_timestamp for p in parsed] == [BASE_TS + 500] * 3
    assert all(p.attributes & 0x08 for p in parsed)
    plog.close(flush=False)


def test_an_already_stamped_batch_keeps_its_crc(tmp_path):
    plog = _open(tmp_path)
    stamped = bytearray(batch(2))
    set_log_append_time(stamped, 0, BASE_TS + 9)
    plog.append(bytes(stamped), log_append_time=BASE_TS + 9)
    (parsed,) = parse_log_file(_log_bytes(plog), check_crc=True)
    assert parsed.crc == int.from_bytes(stamped[17:21], "big")
    assert plog.read(0, 1 << 20).slices  # readable
    header = plog.active_segment.iter_headers()
    assert next(header)[1].timestamp_type == TimestampType.LOG_APPEND_TIME
    plog.close(flush=False)


def test_more_batches_than_one_pwritev_takes(tmp_path):
    """Two buffers per batch: 700 batches need two `pwritev` calls of at most 1024."""
    plog = _open(tmp_path, segment_bytes=16 << 20)
    batches = [build_batch([(b"k", b"v%d" % i)], base_timestamp=BASE_TS) for i in range(700)]
    info = plog.append(b"".join(batches))
    assert (info.first_offset, info.last_offset) == (0, 699)
    parsed = parse_log_file(_log_bytes(plog), check_crc=True)
    assert [p.base_offset for p in parsed] == list(range(700))
    plog.close(flush=False)


def test_a_short_write_is_finished(tmp_path, monkeypatch):
    """`pwritev` may write less than asked (a signal, a full disk on the way): the rest is
    written with `pwrite` before the append counts."""
    real = os.pwritev
    calls = []

    def short(fd, buffers, offset):
        calls.append(offset)
        data = b"".join(bytes(b) for b in buffers)
        return os.pwrite(fd, data[: len(data) // 3], offset)

    plog = _open(tmp_path)
    monkeypatch.setattr(os, "pwritev", short)
    plog.append(batch(4, value_size=100))
    plog.append(b"".join([batch(1), batch(2)]), log_append_time=BASE_TS)
    monkeypatch.setattr(os, "pwritev", real)
    assert len(calls) == 2
    parsed = parse_log_file(_log_bytes(plog), check_crc=True)
    assert [p.base_offset for p in parsed] == [0, 4, 5]
    plog.close(flush=False)


def test_a_failed_write_appends_nothing(tmp_path, monkeypatch):
    plog = _open(tmp_path)
    plog.append(batch(1))

    def full(fd, buffers, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwritev", full)
    with pytest.raises(OSError):
        plog.append(batch(1))
    monkeypatch.undo()
    assert plog.log_end_offset == 1
    plog.append(batch(2))
    parsed = parse_log_file(_log_bytes(plog), check_crc=True)
    assert [p.base_offset for p in parsed] == [0, 1]
    plog.close(flush=False)


def test_appends_do_not_map_the_written_pages(tmp_path):
    """The data goes through the page cache, not through the broker's address space: the
    process's file-backed resident memory does not grow with the log."""
    plog = _open(tmp_path, segment_bytes=64 << 20)
    one = batch(1000, value_size=100)
    before = rss_file_kb()
    for _ in range(300):  # about 36 MB
        plog.append(one)
    assert plog.active_segment.size > 30 << 20
    assert rss_file_kb() - before < 8 << 10
    plog.close(flush=False)


def test_reading_a_segment_through_does_not_keep_it_mapped(tmp_path):
    """Each read scans a batch header through the map, and the kernel maps the pages
    around it too (fault-around): one read per 66 KB batch, as a consumer fetching one
    large batch at a time does, would map the whole segment. Reads drop the mapped pages
    every `_UNMAP_READ_SPAN` bytes."""
    plog = _open(tmp_path, segment_bytes=256 << 20, segment_index_bytes=1 << 20)
    one = batch(600, value_size=100)
    count = (120 << 20) // len(one)  # a bounded loop: ~120 MB in one segment
    for _ in range(count):
        plog.append(one)
    assert len(plog.segments) == 1 and plog.active_segment.size > 100 << 20
    before = rss_file_kb()
    for i in range(count):
        (piece,) = plog.read(i * 600, len(one)).slices
        assert len(piece) == len(one)
    assert rss_file_kb() - before < 48 << 10  # not the 120 MB read
    plog.close(flush=False)


def rss_file_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return 0
