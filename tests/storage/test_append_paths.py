"""The append hot path and the read path's shortcuts agree with the general code.

`PartitionLog.append` takes a shortcut for the common input (one batch, no producer id,
CreateTime: `Segment.append_one`) and the general path for everything else; reads of
inactive segments scan headers through a read-only map, and `Segment.read` skips the
offset-index probe for short walks. These tests hold the shortcuts to what the general
code, recovery, and an independent reader of the files say.
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.records import NO_TIMESTAMP, build_batch
from storage.config import LogConfig
from storage.log import PartitionLog
from storage.segment import HandleCache
from tests.storage.helpers import (
    BASE_TS,
    FakeClock,
    parse_log_file,
    read_file,
    segment_files,
)

SMALL = LogConfig(segment_bytes=2048, index_interval_bytes=150, segment_index_bytes=1024)

# A batch: (record count, value size, timestamps mode). Timestamps may go backwards, be
# absent (-1), or be below -1 (a maxTimestamp no client should send, but bytes allow).
batch_spec = st.tuples(
    st.integers(1, 4),
    st.integers(0, 120),
    st.one_of(
        st.lists(st.integers(BASE_TS - 1000, BASE_TS + 1000), min_size=1, max_size=1),
        st.just([NO_TIMESTAMP]),
        st.just([-7]),
    ),
)


def _build(spec: tuple[int, int, list[int]], i: int) -> bytes:
    count, size, (ts,) = spec
    if ts < NO_TIMESTAMP:
        return build_batch(
            [(b"k%d" % i, b"v" * size)] * count, base_timestamp=ts, max_timestamp=ts
        )
    return build_batch([(b"k%d" % i, b"v" * size, None, ts)] * count)


def _files(dir: str) -> dict[str, bytes]:
    return {n: read_file(os.path.join(dir, n)) for n in segment_files(dir)}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(batch_spec, min_size=1, max_size=40), chunk=st.integers(2, 5),
       validated=st.booleans())
def test_hot_path_matches_general_path_and_recovery(tmp_path_factory, specs, chunk, validated):
    base = tmp_path_factory.mktemp("paths")
    batches = [_build(s, i) for i, s in enumerate(specs)]

    # One batch per call: the hot path (and the general path whenever a roll is due).
    hot = PartitionLog.open(base / "hot-0", SMALL, clock=FakeClock())
    infos = []
    for b in batches:
        leo = hot.log_end_offset
        info = hot.append(b, validated=validated)
        h = parse_log_file(b)[0]
        ts = h.max_timestamp if h.max_timestamp > NO_TIMESTAMP else NO_TIMESTAMP
        assert info.first_offset == leo
        assert info.last_offset == leo + h.last_offset_delta
        assert info.max_timestamp == ts
        assert info.offset_of_max_timestamp == (info.last_offset if ts > NO_TIMESTAMP else -1)
        assert info.log_append_time == NO_TIMESTAMP
        assert (info.record_count, info.batch_count, info.valid_bytes) == (
            h.records_count, 1, len(b))
        assert not info.duplicate
        infos.append(info)
    hot.close()
    hot_files = _files(str(base / "hot-0"))

    # The same batches several per call: the general path. Same log bytes, and each
    # call's AppendInfo is the aggregate of the single appends.
    general = PartitionLog.open(base / "general-0", LogConfig(segment_bytes=1 << 20),
                                clock=FakeClock())
    for i in range(0, len(batches), chunk):
        group = infos[i : i + chunk]
        info = general.append(b"".join(batches[i : i + chunk]), validated=validated)
        best = max(group, key=lambda x: x.max_timestamp)  # first of the largest
        assert (info.first_offset, info.last_offset) == (group[0].first_offset,
                                                         group[-1].last_offset)
        assert (info.max_timestamp, info.offset_of_max_timestamp) == (
            best.max_timestamp, best.offset_of_max_timestamp)
        assert info.record_count == sum(x.record_count for x in group)
        assert info.batch_count == len(group)
    general.close()
    hot_log = b"".join(v for k, v in hot_files.items() if k.endswith(".log"))
    general_log = b"".join(v for k, v in _files(str(base / "general-0")).items()
                           if k.endswith(".log"))
    assert hot_log == general_log

    # Recovery rebuilds the indexes from the log alone: the hot path's must be the same.
    again = PartitionLog.open(base / "hot-0", SMALL, clock=FakeClock(),
                              had_clean_shutdown=False, recovery_point=0)
    assert again.recovered_truncated_bytes == 0
    again.close()
    assert _files(str(base / "hot-0")) == hot_files


def test_hot_path_refuses_what_the_general_path_refuses(tmp_path):
    """Bad single batches fall through to the general path's checks and errors."""
    from storage.errors import CorruptRecord, InvalidRecord, RecordTooLarge

    log = PartitionLog.open(tmp_path / "t-0", LogConfig(max_message_bytes=500))
    good = build_batch([(b"k", b"v", None, BASE_TS)])
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    for data, error in (
        (bytes(bad_crc), CorruptRecord),
        (good[:16] + b"\x01" + good[17:], InvalidRecord),  # magic 1
        (good + b"\x00" * 3, InvalidRecord),  # trailing bytes
        (good[:-1], InvalidRecord),  # cut short
        (build_batch([(b"k", b"v" * 600, None, BASE_TS)]), RecordTooLarge),
    ):
        try:
            log.append(data)
        except error:
            pass
        else:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"{error.__name__} expected")
        assert log.log_end_offset == 0
    assert log.append(good).first_offset == 0
    # A corrupt CRC is not checked when the caller validated already (the broker's path).
    assert log.append(bytes(bad_crc), validated=True).first_offset == 1
    log.close()


def _expected_read(batches, offset, max_bytes, limit):
    """Greedy whole batches from the one holding `offset`, the first one whole, none at
    or past the batch holding `limit` (an independent model of `PartitionLog.read`)."""
    i = next(k for k, b in enumerate(batches) if b[1] >= offset)
    out = []
    total = 0
    for _base, last, data in batches[i:]:
        if last >= limit:
            break
        if out and total + len(data) > max_bytes:
            break
        out.append(data)
        total += len(data)
    return b"".join(out)


def test_reads_through_read_maps_match_an_independent_model(tmp_path):
    """Random reads over many small batches in several inactive segments (read-only
    maps, index probes skipped or not) return exactly the model's bytes, also after the
    maps are evicted, the log is truncated into a mapped segment, and appended to again."""
    cache = HandleCache(capacity=2)
    config = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=512)
    log = PartitionLog.open(tmp_path / "t-0", config, handle_cache=cache)
    rng = random.Random(3)

    def fill(n: int) -> None:
        for _ in range(n):
            records = rng.randint(1, 3)
            log.append(build_batch([(b"k", b"x" * rng.randint(0, 300), None, BASE_TS)]
                                   * records))

    def model() -> list[tuple[int, int, bytes]]:
        out = []
        for seg in log.segments:
            data = seg.read_bytes(0, seg.size)
            for b in parse_log_file(data):
                out.append((b.base_offset, b.last_offset, data[b.position : b.position + b.size]))
        return out

    def check(samples: int) -> None:
        batches = model()
        leo = log.log_end_offset
        for _ in range(samples):
            offset = rng.randrange(log.log_start_offset, leo)
            max_bytes = rng.choice([1, 100, 1000, 5000, 40_000, 200_000])
            limit = rng.choice([leo, rng.randrange(offset, leo + 1)])
            got = log.read_bytes(offset, max_bytes, max_offset=limit)
            assert got == _expected_read(batches, offset, max_bytes, limit), (
                offset, max_bytes, limit)

    fill(1500)
    assert len(log.segments) >= 4
    check(300)
    # Truncate into the middle of a segment that has a read map, then grow again.
    mapped = log.segments[1]
    log.read(mapped.base_offset + 3, 10)
    target = mapped.base_offset + 5
    log.truncate_to(target)
    assert log.log_end_offset <= target
    fill(600)
    check(300)
    log.release_handles()
    check(50)
    log.close()
