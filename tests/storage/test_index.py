"""OffsetIndex / TimeIndex: Kafka's file layout, search semantics, truncation, sanity checks."""

from __future__ import annotations

import bisect
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.errors import CorruptIndex, IndexOffsetOverflow
from storage.index import NO_TIMESTAMP, OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset
from tests.storage.helpers import parse_offset_index, parse_time_index, read_file


def test_new_offset_index_is_preallocated_rounded_down(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 100, 1003)
    assert os.path.getsize(tmp_path / "0.index") == 1000  # rounded down to 8
    assert idx.entries == 0 and idx.max_entries == 125
    idx.close()
    assert os.path.getsize(tmp_path / "0.index") == 0  # trimmed to real entries


def test_time_index_preallocated_to_multiple_of_12(tmp_path):
    idx = TimeIndex(tmp_path / "0.timeindex", 0, 1000)
    assert os.path.getsize(tmp_path / "0.timeindex") == 996
    idx.close()


def test_offset_index_bytes_are_kafkas_layout(tmp_path):
    path = tmp_path / "00000000000000000050.index"
    idx = OffsetIndex(path, 50, 4096)
    idx.append(55, 0)
    idx.append(60, 4100)
    idx.append(2**31 - 1 + 50, 8200)
    idx.close()
    raw = read_file(path)
    assert raw == struct.pack(">ii", 5, 0) + struct.pack(">ii", 10, 4100) + struct.pack(
        ">ii", 2**31 - 1, 8200
    )
    assert parse_offset_index(raw, 50) == [(55, 0), (60, 4100), (2**31 - 1 + 50, 8200)]


def test_time_index_bytes_are_kafkas_layout(tmp_path):
    path = tmp_path / "00000000000000000050.timeindex"
    idx = TimeIndex(path, 50, 4096)
    idx.maybe_append(1000, 52)
    idx.maybe_append(1000, 53)  # same timestamp: ignored
    idx.maybe_append(2000, 60)
    idx.close()
    raw = read_file(path)
    assert raw == struct.pack(">qi", 1000, 2) + struct.pack(">qi", 2000, 10)
    assert parse_time_index(raw, 50) == [(1000, 52), (2000, 60)]


def test_reopen_trusts_file_size(tmp_path):
    path = tmp_path / "0.index"
    idx = OffsetIndex(path, 0, 4096)
    for i in range(10):
        idx.append(i * 3, i * 100)
    idx.close()
    again = OffsetIndex(path, 0, 4096)
    assert again.entries == 10 and again.last_offset == 27
    assert again.lookup(14) == OffsetPosition(12, 400)
    again.resize(4096)  # active again: room for more
    again.append(30, 1000)
    assert again.entries == 11
    again.close()
    assert os.path.getsize(path) == 88


def test_lookup_semantics(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 100, 4096)
    assert idx.lookup(100) == OffsetPosition(100, 0)  # empty index
    for i in range(1, 6):
        idx.append(100 + i * 10, i * 1000)
    assert idx.lookup(99) == OffsetPosition(100, 0)
    assert idx.lookup(109) == OffsetPosition(100, 0)
    assert idx.lookup(110) == OffsetPosition(110, 1000)
    assert idx.lookup(125) == OffsetPosition(120, 2000)
    assert idx.lookup(10**9) == OffsetPosition(150, 5000)
    assert idx.fetch_upper_bound_offset(0, 2500) == OffsetPosition(130, 3000)
    assert idx.fetch_upper_bound_offset(0, 3000) == OffsetPosition(130, 3000)
    assert idx.fetch_upper_bound_offset(0, 6000) is None
    assert idx.lookup_position_floor(2999) == OffsetPosition(120, 2000)
    assert idx.lookup_position_floor(999) is None


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 1000), min_size=0, max_size=3000),
    targets=st.lists(st.integers(-5, 3_000_000), min_size=1, max_size=30),
)
def test_lookup_matches_bisect_including_warm_section(tmp_path_factory, gaps, targets):
    path = tmp_path_factory.mktemp("idx") / "0.index"
    idx = OffsetIndex(path, 0, 8 * 4000)
    offsets, off = [], 0
    for g in gaps:
        off += g
        offsets.append(off)
        idx.append(off, off * 2)
    for t in targets:
        i = bisect.bisect_right(offsets, t) - 1
        expect = OffsetPosition(offsets[i], offsets[i] * 2) if i >= 0 else OffsetPosition(0, 0)
        assert idx.lookup(t) == expect
        j = bisect.bisect_left([o * 2 for o in offsets], t)
        upper = idx.fetch_upper_bound_offset(t, 0)
        assert upper == (OffsetPosition(offsets[j], offsets[j] * 2) if j < len(offsets) else None)
    idx.close()


def test_append_rules(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 10, 16)
    idx.append(10, 0)
    with pytest.raises(ValueError):
        idx.append(10, 5)  # not larger than the last offset
    idx.append(11, 5)
    assert idx.is_full()
    with pytest.raises(ValueError):
        idx.append(12, 9)
    assert not idx.can_append_offset(9)
    assert not idx.can_append_offset(10 + 2**31)
    with pytest.raises(IndexOffsetOverflow):
        idx.relative_offset(10 + 2**31)


def test_time_index_full_keeps_a_slot_for_roll(tmp_path):
    idx = TimeIndex(tmp_path / "0.timeindex", 0, 36)  # 3 slots
    idx.maybe_append(1, 1)
    idx.maybe_append(2, 2)
    assert idx.is_full()  # entries >= max_entries - 1
    with pytest.raises(ValueError):
        idx.maybe_append(3, 3)
    idx.maybe_append(3, 3, skip_full_check=True)
    assert idx.entries == 3
    with pytest.raises(ValueError):
        idx.maybe_append(2, 4)  # timestamp going back
    with pytest.raises(ValueError):
        idx.maybe_append(9, 1, skip_full_check=True)  # offset going back


def test_time_index_lookup(tmp_path):
    idx = TimeIndex(tmp_path / "0.timeindex", 100, 4096)
    assert idx.lookup(5) == TimestampOffset(NO_TIMESTAMP, 100)
    assert idx.last_entry == TimestampOffset(NO_TIMESTAMP, 100)
    for i in range(1, 10):
        idx.maybe_append(i * 100, 100 + i * 5)
    assert idx.lookup(99) == TimestampOffset(NO_TIMESTAMP, 100)
    assert idx.lookup(100) == TimestampOffset(100, 105)
    assert idx.lookup(450) == TimestampOffset(400, 120)
    assert idx.lookup(10**12) == TimestampOffset(900, 145)


def test_truncate_to(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 0, 4096)
    for o in (5, 10, 15, 20):
        idx.append(o, o * 10)
    idx.truncate_to(15)  # exact: removes 15 and up
    assert idx.entries == 2 and idx.last_offset == 10
    idx.truncate_to(12)  # between: keeps 10
    assert idx.entries == 2
    idx.truncate_to(3)
    assert idx.entries == 0 and idx.last_offset == 0
    tidx = TimeIndex(tmp_path / "0.timeindex", 0, 4096)
    for o in (5, 10, 15, 20):
        tidx.maybe_append(o * 100, o)
    tidx.truncate_to(15)
    assert tidx.entries == 2 and tidx.last_entry == TimestampOffset(1000, 10)
    tidx.truncate_to(0)
    assert tidx.last_entry == TimestampOffset(NO_TIMESTAMP, 0)


def test_sanity_check_detects_corruption(tmp_path):
    path = tmp_path / "0.index"
    idx = OffsetIndex(path, 0, 4096)
    idx.append(5, 100)
    idx.append(9, 200)
    idx.close()
    OffsetIndex(path, 0, 4096).sanity_check(log_size=1000)
    with pytest.raises(CorruptIndex):
        OffsetIndex(path, 0, 4096).sanity_check(log_size=150)  # points past the log
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x00")  # not a multiple of 8
    with pytest.raises(CorruptIndex):
        OffsetIndex(path, 0, 4096).sanity_check()
    with open(path, "wb") as f:
        f.write(struct.pack(">ii", 9, 200) + struct.pack(">ii", 5, 300))  # out of order
    with pytest.raises(CorruptIndex):
        OffsetIndex(path, 0, 4096).sanity_check()
    tpath = tmp_path / "0.timeindex"
    with open(tpath, "wb") as f:
        f.write(struct.pack(">qi", 500, 1) + struct.pack(">qi", 100, 2))
    with pytest.raises(CorruptIndex):
        TimeIndex(tpath, 0, 4096).sanity_check()
    with open(tpath, "wb") as f:
        f.write(struct.pack(">qi", 500, 1) + b"\x01")
    with pytest.raises(CorruptIndex):
        TimeIndex(tpath, 0, 4096).sanity_check()


def test_zero_size_index_is_full(tmp_path):
    path = tmp_path / "0.index"
    idx = OffsetIndex(path, 0, 4096)
    idx.close()
    again = OffsetIndex(path, 0, 4096)  # existing, empty file: no entries, no room
    assert again.entries == 0 and again.is_full()
    assert again.lookup(10) == OffsetPosition(0, 0)
    again.reset()
    assert not again.is_full()
    again.close()
