"""PartitionLog: append, read, offsets by time, roll, truncation, delete_records, flush."""

from __future__ import annotations

import os

import pytest
from kafka.record.default_records import DefaultRecordBatch

from protocol.records import Compression, TimestampType, build_batch, iter_batches, iter_records
from storage.config import LogConfig
from storage.errors import CorruptRecord, InvalidRecord, OffsetOutOfRange, RecordTooLarge
from storage.log import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    PartitionLog,
    TimestampAndOffset,
)
from tests.storage.helpers import (
    BASE_TS,
    FakeClock,
    batch,
    check_partition_dir,
    parse_log_file,
    parse_offset_index,
    parse_time_index,
    read_file,
)

SMALL = LogConfig(segment_bytes=4096, index_interval_bytes=200, segment_index_bytes=1024)


@pytest.fixture
def clock():
    return FakeClock()


def open_log(tmp_path, config=SMALL, clock=None, **kw):
    return PartitionLog.open(tmp_path / "t-0", config, clock=clock or FakeClock(), **kw)


def offsets_of(data: bytes) -> list[tuple[int, int]]:
    return [(h.base_offset, h.last_offset) for _, h in iter_batches(data)]


def test_append_assigns_offsets_in_place_and_reads_back(tmp_path, clock):
    log = open_log(tmp_path, clock=clock)
    b1, b2 = batch(3), batch(5, compression=Compression.LZ4)
    i1 = log.append(b1, leader_epoch=7)
    i2 = log.append(b2, leader_epoch=8)
    assert (i1.first_offset, i1.last_offset, i1.record_count) == (0, 2, 3)
    assert (i2.first_offset, i2.last_offset) == (3, 7)
    assert log.log_end_offset == 8 and log.high_watermark == 8
    data = log.read_bytes(0, 10**6)
    assert data[8:12] == b1[8:12] and data[12:16] == (7).to_bytes(4, "big")
    # only baseOffset and epoch differ from what the client sent
    assert data[16 : len(b1)] == b1[16:]
    assert data[len(b1) + 16 :] == b2[16:]
    # an independent client library parses what we serve
    pos, seen = 0, []
    while pos < len(data):
        size = int.from_bytes(data[pos + 8 : pos + 12], "big") + 12
        kb = DefaultRecordBatch(bytearray(data[pos : pos + size]))
        assert kb.validate_crc()
        seen += [r.offset for r in kb]
        pos += size
    assert seen == list(range(8))


def test_multi_batch_append_and_record_values(tmp_path):
    log = open_log(tmp_path)
    blob = batch(2) + batch(1) + build_batch([(b"x", b"y", None, BASE_TS + 5)])
    info = log.append(blob)
    assert (info.first_offset, info.last_offset, info.batch_count) == (0, 3, 3)
    data = log.read_bytes(0, 10**6)
    assert offsets_of(data) == [(0, 1), (2, 2), (3, 3)]
    recs = [r for p, h in iter_batches(data) for r in iter_records(data, p, h)]
    assert [r.offset for r in recs] == [0, 1, 2, 3]
    assert recs[-1].value == b"y" and recs[-1].timestamp == BASE_TS + 5
    assert info.max_timestamp == BASE_TS + 5 and info.offset_of_max_timestamp == 3


def test_invalid_appends_are_rejected_and_leave_the_log_unchanged(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_bytes=1 << 16, max_message_bytes=300))
    good = batch(1)
    with pytest.raises(InvalidRecord):
        log.append(good[:-1])  # torn
    with pytest.raises(InvalidRecord):
        log.append(good + b"\x00" * 10)  # trailing garbage
    bad_magic = bytearray(good)
    bad_magic[16] = 1
    with pytest.raises(InvalidRecord):
        log.append(bad_magic)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    with pytest.raises(CorruptRecord):
        log.append(bad_crc)
    with pytest.raises(RecordTooLarge):
        log.append(batch(1, value_size=400))
    assert log.log_end_offset == 0 and log.size_in_bytes() == 0
    empty = log.append(b"")
    assert empty.first_offset == -1 and log.log_end_offset == 0


def test_log_append_time(tmp_path, clock):
    log = open_log(
        tmp_path,
        LogConfig(segment_bytes=1 << 16, message_timestamp_type="LogAppendTime"),
        clock=clock,
    )
    info = log.append(batch(2, ts=5))
    assert info.log_append_time == clock.now == info.max_timestamp
    data = log.read_bytes(0, 10**6)
    ((_, h),) = iter_batches(data)
    assert h.timestamp_type == TimestampType.LOG_APPEND_TIME and h.max_timestamp == clock.now
    kb = DefaultRecordBatch(bytearray(data))
    assert kb.validate_crc()
    assert [r.timestamp for r in kb] == [clock.now, clock.now]
    log2 = PartitionLog.open(tmp_path / "u-0", LogConfig(segment_bytes=1 << 16), clock=clock)
    explicit = log2.append(batch(1, ts=5), log_append_time=42)
    assert explicit.log_append_time == 42


def test_read_semantics(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_bytes=1 << 20, index_interval_bytes=100))
    sizes = []
    for n in range(1, 30):
        b = batch(n % 4 + 1, value_size=20)
        sizes.append(len(b))
        log.append(b)
    leo = log.log_end_offset
    # offset in the middle of a batch: that whole batch comes first
    r = log.read(5, 10**6)
    first_base = offsets_of(r.slices[0].read())[0][0]
    assert first_base <= 5
    assert r.log_end_offset == leo and r.high_watermark == leo and r.log_start_offset == 0
    # whole batches only, never more than max_bytes (after the first)
    for max_bytes in (1, 50, 100, 250, 1000):
        data = log.read_bytes(0, max_bytes)
        assert len(data) == sum(len(x) for x in [data])
        parsed = parse_log_file(data)
        assert sum(b.size for b in parsed) == len(data)
        assert len(data) <= max(max_bytes, sizes[0])
    # min_one_message False: nothing when the first batch does not fit
    r = log.read(0, 10, min_one_message=False)
    assert r.slices == [] and r.first_entry_incomplete
    # at the log end: empty; past it or before the start: out of range
    assert log.read(leo, 100).slices == []
    with pytest.raises(OffsetOutOfRange):
        log.read(leo + 1, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)
    # max_offset excludes the batch containing it
    data = log.read_bytes(0, 10**6, max_offset=7)
    assert offsets_of(data)[-1][1] < 7 or offsets_of(data)[-1][0] < 7
    assert all(last < 7 or base < 7 for base, last in offsets_of(data))
    assert all(base < 7 for base, _ in offsets_of(data))
    assert log.read(7, 100, max_offset=7).slices == []


def test_read_spans_segments_and_slices_are_sendable(tmp_path):
    log = open_log(tmp_path)
    for _ in range(40):
        log.append(batch(2, value_size=100))
    assert len(log.segments) > 2
    r = log.read(0, 10**7)
    assert len(r.slices) == len(log.segments)
    joined = b"".join(s.read() for s in r.slices)
    assert [b.base_offset for b in parse_log_file(joined)] == list(range(0, 80, 2))
    s = r.slices[0]
    assert len(s) == s.length and isinstance(s.fileno(), int)
    out_r, out_w = os.pipe()
    try:
        sent = os.sendfile(out_w, s.fileno(), s.position, len(s))
        assert os.read(out_r, sent) == s.read()[:sent]
    finally:
        os.close(out_r)
        os.close(out_w)


def test_roll_on_size_and_segment_layout(tmp_path):
    log = open_log(tmp_path)
    b = batch(1, value_size=500)
    for _ in range(20):
        log.append(b)
    segs = log.segments
    assert len(segs) > 1
    for s in segs[:-1]:
        assert s.size <= 4096 and not s.is_active
        assert os.path.getsize(s.log_path) == s.size  # trimmed on roll
    active = segs[-1]
    assert os.path.getsize(active.log_path) >= 4096  # preallocated map
    log.close()
    assert os.path.getsize(active.log_path) == active.size
    batches = check_partition_dir(tmp_path / "t-0")
    assert [x.base_offset for x in batches] == list(range(20))
    names = sorted(os.listdir(tmp_path / "t-0"))
    assert names[0] == "00000000000000000000.index"
    assert f"{segs[1].base_offset:020d}.log" in names


def test_index_entries_follow_kafkas_interval_rule(tmp_path):
    cfg = LogConfig(segment_bytes=1 << 20, index_interval_bytes=250)
    log = open_log(tmp_path, cfg)
    positions = []
    pos = 0
    for _ in range(12):
        b = batch(2, value_size=40)
        positions.append(pos)
        log.append(b)
        pos += len(b)
    log.close()
    d = tmp_path / "t-0"
    idx = parse_offset_index(read_file(d / "00000000000000000000.index"), 0)
    # entry added when bytes since the last entry > interval, BEFORE counting this append:
    size = positions[1]
    expect = []
    since = 0
    for i, p in enumerate(positions):
        if since > 250:
            expect.append((2 * i + 1, p))
            since = 0
        since += size
    assert idx == expect
    tidx = parse_time_index(read_file(d / "00000000000000000000.timeindex"), 0)
    assert tidx[-1][0] == BASE_TS  # max timestamp (all equal) -> its first batch's last offset
    assert tidx == [(BASE_TS, 1)]


def test_roll_on_time_with_jitter(tmp_path, clock):
    cfg = LogConfig(segment_bytes=1 << 20, segment_ms=1000)
    log = open_log(tmp_path, cfg, clock=clock)
    log.append(batch(1, ts=-1))  # no timestamp: wall clock since creation counts
    clock.advance(1000)
    log.append(batch(1, ts=-1))
    assert len(log.segments) == 1
    clock.advance(1)
    log.append(batch(1, ts=-1))
    assert len(log.segments) == 2
    # with timestamps: the first batch's timestamp against the new batch's
    log.roll()
    log.append(batch(1, ts=BASE_TS))
    log.append(batch(1, ts=BASE_TS + 1000))
    assert len(log.segments) == 3
    log.append(batch(1, ts=BASE_TS + 1001))
    assert len(log.segments) == 4
    # jitter: rolls earlier by the segment's random jitter
    import random

    jcfg = LogConfig(segment_bytes=1 << 20, segment_ms=1000, segment_jitter_ms=1000)
    jlog = PartitionLog.open(tmp_path / "j-0", jcfg, clock=clock, rng=random.Random(3))
    jitter = jlog.active_segment.roll_jitter_ms
    assert 0 < jitter < 1000
    jlog.append(batch(1, ts=BASE_TS))
    jlog.append(batch(1, ts=BASE_TS + 1000 - jitter + 1))
    assert len(jlog.segments) == 2


def test_roll_on_full_index(tmp_path):
    cfg = LogConfig(segment_bytes=1 << 20, index_interval_bytes=0, segment_index_bytes=32)
    log = open_log(tmp_path, cfg)
    for _ in range(12):
        log.append(batch(1))
    # 4 offset-index slots: the segment rolls once the index is full
    assert len(log.segments) > 1
    for s in log.segments[:-1]:
        assert s.offset_index().entries <= 4


def test_roll_on_offset_overflow(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_bytes=1 << 20))
    log.truncate_fully_and_start_at(0)
    big = build_batch([(b"k", b"v", None, BASE_TS)], last_offset_delta=2**31 - 1)
    log.append(batch(1))
    log.append(big)
    assert len(log.segments) == 2  # last offset 2**31 does not fit segment 0's index
    assert log.segments[1].base_offset == 1
    assert log.log_end_offset == 2**31 + 1


def test_explicit_roll(tmp_path):
    log = open_log(tmp_path)
    same = log.roll()
    assert same is log.active_segment and len(log.segments) == 1  # empty: no-op
    log.append(batch(1))
    new = log.roll()
    assert new.base_offset == 1 and len(log.segments) == 2


def test_offset_for_timestamp(tmp_path):
    log = open_log(tmp_path)
    for i in range(30):
        log.append(
            batch(3, timestamps=[BASE_TS + 10 * i, BASE_TS + 10 * i + 5, BASE_TS + 10 * i + 2])
        )
    assert log.offset_for_timestamp(BASE_TS) == TimestampAndOffset(BASE_TS, 0, 0)
    assert log.offset_for_timestamp(BASE_TS + 3).offset == 1
    assert log.offset_for_timestamp(BASE_TS + 6).offset == 3
    assert log.offset_for_timestamp(BASE_TS + 155).offset == 46
    assert log.offset_for_timestamp(BASE_TS + 10**6) is None
    assert log.offset_for_timestamp(0).offset == 0
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP).offset == 0
    assert log.offset_for_timestamp(LATEST_TIMESTAMP).offset == 90
    assert log.max_timestamp() == BASE_TS + 295
    mx = log.offset_for_timestamp(MAX_TIMESTAMP)
    assert mx == TimestampAndOffset(BASE_TS + 295, 88, 0)
    # after delete_records, lookups start at the log start offset
    log.delete_records(40)
    assert log.offset_for_timestamp(BASE_TS).offset == 40
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP).offset == 40


def test_truncate_to(tmp_path):
    log = open_log(tmp_path)
    for _ in range(30):
        log.append(batch(2, value_size=200))
    nsegs = len(log.segments)
    assert not log.truncate_to(60)
    assert log.truncate_to(31)  # mid-batch: batch [30, 31] goes whole
    assert log.log_end_offset == 30 and log.high_watermark == 30
    assert len(log.segments) < nsegs
    assert offsets_of(log.read_bytes(0, 10**7))[-1] == (28, 29)
    info = log.append(batch(1))
    assert info.first_offset == 30
    log.truncate_to(0)
    assert log.log_end_offset == 0 and log.read_bytes(0, 100) == b""
    log.append(batch(1))
    log.close()
    check_partition_dir(tmp_path / "t-0")


def test_truncate_below_first_segment_starts_over(tmp_path):
    log = open_log(tmp_path)
    for _ in range(30):
        log.append(batch(2, value_size=200))
    log.delete_records(40)
    assert log.segments[0].base_offset > 10
    log.truncate_to(10)
    assert (log.log_start_offset, log.log_end_offset) == (10, 10)
    assert [s.base_offset for s in log.segments] == [10]
    assert log.append(batch(1)).first_offset == 10


def test_delete_records(tmp_path):
    log = open_log(tmp_path)
    for _ in range(30):
        log.append(batch(2, value_size=200))
    before = len(log.segments)
    assert log.delete_records(25) == 25
    assert log.log_start_offset == 25
    assert len(log.segments) < before
    assert (
        log.segments[0].base_offset
        <= 25
        < (log.segments[1].base_offset if len(log.segments) > 1 else 10**9)
    )
    with pytest.raises(OffsetOutOfRange):
        log.read(24, 100)
    data = log.read_bytes(25, 100)
    assert offsets_of(data)[0][0] == 24  # the batch containing 25
    assert log.delete_records(10) == 25  # never moves back
    with pytest.raises(OffsetOutOfRange):
        log.delete_records(log.high_watermark + 1)
    log.delete_records(log.log_end_offset)
    assert log.log_start_offset == log.log_end_offset
    assert log.read(log.log_end_offset, 100).slices == []


def test_high_watermark_api(tmp_path):
    log = open_log(tmp_path)
    log.append(batch(5))
    assert log.update_high_watermark(3) == 3
    assert log.update_high_watermark(100) == 5
    log.update_high_watermark(2)
    r = log.read(0, 10**6, max_offset=log.high_watermark)
    assert r.high_watermark == 2 and r.slices == []  # the only batch holds offset 2


def test_flush_advances_recovery_point(tmp_path):
    log = open_log(tmp_path)
    for _ in range(10):
        log.append(batch(1, value_size=500))
    assert log.recovery_point == 0
    log.flush(3)
    assert log.recovery_point == 3
    log.flush()
    assert log.recovery_point == log.log_end_offset
    log.flush(2)
    assert log.recovery_point == log.log_end_offset


def test_flush_messages_policy(tmp_path):
    log = open_log(tmp_path, LogConfig(segment_bytes=1 << 20, flush_messages=3))
    log.append(batch(2))
    assert log.recovery_point == 0
    log.append(batch(1))
    assert log.recovery_point == 3


def test_clean_reopen_keeps_everything(tmp_path, clock):
    log = open_log(tmp_path, clock=clock)
    for i in range(25):
        log.append(batch(2, value_size=150, ts=BASE_TS + i))
    expect = log.read_bytes(0, 10**7)
    leo = log.log_end_offset
    log.close()
    again = open_log(tmp_path, clock=clock, recovery_point=leo)
    assert again.log_end_offset == leo and again.read_bytes(0, 10**7) == expect
    assert again.offset_for_timestamp(BASE_TS + 20).offset == 40
    assert again.append(batch(1)).first_offset == leo
    again.close()


def test_handles_can_be_released_and_reopened(tmp_path):
    log = open_log(tmp_path)
    for _ in range(10):
        log.append(batch(1, value_size=500))
    r = log.read(0, 10**6)
    log.release_handles()
    assert r.slices[0].read()  # in-flight slice still readable
    log.append(batch(1))
    assert log.read_bytes(0, 10**6).count(b"AAAA") > 0
    assert offsets_of(log.read_bytes(0, 10**7))[-1] == (10, 10)


def test_flush_in_a_thread_while_appending(tmp_path):
    import threading

    log = open_log(tmp_path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def flusher():
        try:
            while not stop.is_set():
                log.flush()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=flusher)
    t.start()
    try:
        for _ in range(300):
            log.append(batch(1, value_size=300))
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors
    log.flush()
    assert log.recovery_point == log.log_end_offset == 300
    log.close()
    check_partition_dir(tmp_path / "t-0")
