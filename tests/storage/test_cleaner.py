"""Log compaction (storage/cleaner.py): a model-checked property test, then Kafka's rules one
by one: tombstones and the delete horizon, compaction lags, the dirty ratio, the checkpoint
file, transactional and producer batches, codecs, concurrent reads, and crash safety of
the segment swap. Real-client coverage comes through the broker (its Fetch of a
compacted topic) once it schedules `LogManager.cleaner.clean_once`."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from kafka.record.default_records import DefaultRecordBatch

from protocol.records import (
    Compression,
    ControlType,
    TimestampType,
    batch_crc_ok,
    build_batch,
    build_control_batch,
    iter_batches,
    iter_records,
)
from storage.cleaner import (
    CLEANER_OFFSET_CHECKPOINT_FILE,
    Cleaner,
    OffsetMap,
    clean_log,
    cleanable_offsets,
    log_to_clean,
)
from storage.config import LogConfig
from storage.log import PartitionLog
from storage.manager import LogManager, TopicPartition, read_offset_checkpoint
from storage.segment import HandleCache, Segment, recover_interrupted_swaps
from tests.storage.helpers import BASE_TS, FakeClock, check_partition_dir

DR = 1000  # delete.retention.ms in these tests


def cfg(**kw) -> LogConfig:
    base = dict(
        segment_bytes=700,
        index_interval_bytes=150,
        cleanup_policy=("compact",),
        delete_retention_ms=DR,
        file_delete_delay_ms=0,
        min_cleanable_dirty_ratio=0.5,
        retention_ms=-1,
    )
    base.update(kw)
    return LogConfig(**base)  # type: ignore[arg-type]


def rec(key: bytes | None, value: bytes | None, ts: int = BASE_TS) -> bytes:
    return build_batch([(key, value, None, ts)])


def read_batches(log: PartitionLog):
    """(header, records) of every batch of a full read; every CRC must hold."""
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    out = []
    for pos, h in iter_batches(data):
        assert batch_crc_ok(data, pos, h), f"bad CRC in batch {h.base_offset}"
        out.append((h, list(iter_records(data, pos, h)), data[pos : pos + h.size]))
    assert sum(h.size for h, _, _ in out) == len(data)
    return out


def read_records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for _, recs, _ in read_batches(log) for r in recs]


def open_log(path, clock, config=None, **kw) -> PartitionLog:
    return PartitionLog.open(path, config or cfg(), clock=clock, topic="t", partition=0, **kw)


# ---------------------------------------------------------------------- the model


class CompactionModel(RuleBasedStateMachine):
    """Random keyed appends (values, tombstones, every codec), rolls, cleaning passes at
    advancing times, clean and unclean restarts, against a model of what must survive:
    below the cleaner checkpoint E, exactly the latest record of each key among offsets
    < E (a tombstone only until its batch's delete horizon passes); from E on,
    everything; offsets and bytes as appended."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="odradek-cleaner-model-")
        self.clock = FakeClock()
        self.mgr = self._open()
        self.log = self.mgr.get_or_create_log("t", 0)
        self.appended: dict[int, tuple[bytes, bytes | None]] = {}
        self.horizon: dict[int, int] = {}  # tombstone offset -> delete horizon
        self.end = 0  # the cleaner checkpoint
        self.last_pass_time: int | None = None
        self.gone: set[int] = set()

    def _open(self) -> LogManager:
        return LogManager([self.dir], cfg(segment_bytes=900), clock=self.clock)

    def teardown(self) -> None:
        try:
            self.mgr.shutdown()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    @rule(
        items=st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=4),
        codec=st.sampled_from(list(Compression)),
        size=st.integers(0, 60),
    )
    def append(self, items, codec, size):
        first = self.log.log_end_offset
        recs = []
        for i, (k, tomb) in enumerate(items):
            key = b"key-%d" % k
            value = None if tomb else bytes([65 + (first + i) % 26]) * size
            recs.append((key, value, None, self.clock.now))
        info = self.log.append(build_batch(recs, compression=codec))
        assert info.first_offset == first
        for i, (key, value, _, _) in enumerate(recs):
            self.appended[first + i] = (key, value)

    @rule()
    def roll(self):
        self.log.roll()

    @rule(advance=st.sampled_from([0, 1, DR - 1, DR, 3 * DR]), forced=st.booleans())
    def clean(self, advance, forced):
        self.clock.advance(advance)
        now = self.clock.now
        if forced:
            stats = self.mgr.cleaner.clean_log("t", 0, now)
        else:
            stats = self.mgr.cleaner.clean_once(now)
        if stats is None:
            return
        assert not stats.aborted and stats.error is None
        assert self.mgr.cleaner.checkpoints()[TopicPartition("t", 0)] == stats.end_offset
        if stats.end_offset == stats.first_dirty_offset and stats.groups == 0:
            return
        self._apply_pass(stats.end_offset, now)

    def _apply_pass(self, end: int, now: int) -> None:
        latest: dict[bytes, int] = {}
        for off in sorted(self.appended):
            if off < end and off not in self.gone:
                latest[self.appended[off][0]] = off
        for off in sorted(self.appended):
            if off >= end or off in self.gone:
                continue
            key, value = self.appended[off]
            if latest[key] != off:
                self.gone.add(off)
            elif value is None:
                if off in self.horizon and now >= self.horizon[off]:
                    self.gone.add(off)
                elif off not in self.horizon:
                    self.horizon[off] = now + DR
        self.end = end

    @precondition(lambda self: self.appended)
    @rule(clean_shutdown=st.booleans())
    def restart(self, clean_shutdown):
        if clean_shutdown:
            self.mgr.shutdown()
        else:
            self.mgr.close_without_shutdown()
        self.mgr = self._open()
        self.log = self.mgr.get_log("t", 0)
        assert self.log is not None

    @invariant()
    def survivors_match_the_model(self):
        got = read_records(self.log)
        expect = [(o, *self.appended[o]) for o in sorted(self.appended) if o not in self.gone]
        assert got == expect


TestCompactionModel = CompactionModel.TestCase
TestCompactionModel.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ---------------------------------------------------------------------- tombstones


def test_tombstone_gets_a_delete_horizon_then_goes_after_delete_retention(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    log.append(rec(b"a", b"1"))
    log.append(rec(b"a", None))
    log.append(rec(b"b", b"1"))
    log.roll()
    t1 = clock.now
    stats = clean_log(log, t1)
    assert stats is not None and stats.end_offset == 3
    batches = read_batches(log)
    tomb = [(h, r) for h, r, _ in batches if r and r[0].value is None]
    assert len(tomb) == 1
    h, recs = tomb[0]
    assert h.attributes & 0x40, "bit 6: delete horizon set"
    assert h.base_timestamp == t1 + DR
    assert recs[0].timestamp == BASE_TS, "record timestamps survive the re-basing"
    assert [(o, k, v) for o, k, v in read_records(log)] == [(1, b"a", None), (2, b"b", b"1")]

    def another_pass(at: int) -> None:
        log.append(rec(b"c%d" % at, b"v"))
        log.roll()
        assert clean_log(log, at, first_dirty_offset=log.segments[-2].base_offset) is not None

    another_pass(t1 + DR - 1)
    assert (1, b"a", None) in read_records(log), "kept until the horizon"
    another_pass(t1 + DR)
    assert [k for _, k, _ in read_records(log)] == [
        b"b",
        b"c%d" % (t1 + DR - 1),
        b"c%d" % (t1 + DR),
    ]
    log.close()


def test_keyless_records_are_dropped(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    log.append(build_batch([(None, b"x", None, BASE_TS), (b"k", b"v", None, BASE_TS)]))
    log.roll()
    stats = clean_log(log, clock.now)
    assert stats is not None and stats.invalid_messages == 1
    assert read_records(log) == [(1, b"k", b"v")]
    log.close()


# ---------------------------------------------------------------------- what gets cleaned


def test_active_segment_is_never_cleaned(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    for i in range(5):
        log.append(rec(b"k", b"%d" % i))
    assert clean_log(log, clock.now) is None
    assert len(read_records(log)) == 5
    log.close()


def test_min_compaction_lag_holds_back_young_segments(tmp_path):
    clock = FakeClock()
    lag = 10_000
    log = open_log(tmp_path / "t-0", clock, cfg(min_compaction_lag_ms=lag))
    for i in range(3):
        log.append(rec(b"k", b"%d" % i, ts=BASE_TS + i))
    log.roll()
    log.append(rec(b"k", b"3", ts=BASE_TS + lag))
    log.roll()
    with log.lock:
        # the first segment's newest record is BASE_TS + 2
        first_dirty, uncleanable, _ = cleanable_offsets(log, None, BASE_TS + lag + 1)
    assert (first_dirty, uncleanable) == (0, 0)
    assert clean_log(log, BASE_TS + lag + 1) is None
    with log.lock:
        assert cleanable_offsets(log, None, BASE_TS + lag + 2)[1] == 3
    stats = clean_log(log, BASE_TS + lag + 2)
    assert stats is not None and stats.end_offset == 3
    assert [o for o, _, _ in read_records(log)] == [2, 3]
    log.close()


def _manager(tmp_path, clock, config, **kw) -> LogManager:
    return LogManager([tmp_path / "d"], config, clock=clock, **kw)


def test_dirty_ratio_picks_the_filthiest_log_above_min_ratio(tmp_path):
    clock = FakeClock()
    mgr = _manager(tmp_path, clock, cfg(min_cleanable_dirty_ratio=0.5))
    a = mgr.get_or_create_log("a", 0)
    b = mgr.get_or_create_log("b", 0)
    c = mgr.get_or_create_log("c", 0, cfg(cleanup_policy=("delete",)))
    for lg in (a, b, c):
        for i in range(6):
            lg.append(rec(b"k", b"%d" % i))
        lg.roll()
    # "a" was cleaned up to its active segment before: nothing dirty
    mgr.cleaner._state.checkpoints[mgr.log_dirs[0]][TopicPartition("a", 0)] = 6
    ltc = mgr.cleaner.grab_filthiest_log(clock.now)
    assert ltc is not None and ltc.topic_partition == TopicPartition("b", 0)
    assert ltc.cleanable_ratio == 1.0 and ltc.clean_bytes == 0
    assert ltc.cleanable_bytes == b.segments[0].size
    stats = mgr.cleaner._run(ltc, clock.now)
    assert stats.end_offset == 6
    # b: 1 clean batch, then 6 dirty ones -> ratio 6/7 > 0.5; with a 0.9 minimum it waits
    for i in range(6):
        b.append(rec(b"k", b"x%d" % i))
    b.roll()
    with b.lock:
        first_dirty, unc, _ = cleanable_offsets(b, 6, clock.now)
        ltc = log_to_clean(b, first_dirty, unc)
    assert ltc.cleanable_ratio == pytest.approx(ltc.cleanable_bytes / ltc.total_bytes)
    assert ltc.clean_bytes == b.segments[0].size
    mgr.update_config("b", cfg(min_cleanable_dirty_ratio=0.9))
    assert mgr.cleaner.clean_once(clock.now) is None
    mgr.update_config("b", cfg(min_cleanable_dirty_ratio=0.5))
    assert mgr.cleaner.clean_once(clock.now) is not None
    assert [k for _, k, _ in read_records(b)] == [b"k"]
    mgr.shutdown()


def test_max_compaction_lag_forces_cleaning_below_the_ratio(tmp_path):
    clock = FakeClock()
    config = cfg(min_cleanable_dirty_ratio=1.0, max_compaction_lag_ms=60_000)
    mgr = _manager(tmp_path, clock, config)
    log = mgr.get_or_create_log("t", 0)
    log.append(rec(b"k", b"1", ts=BASE_TS))
    log.append(rec(b"k", b"2", ts=BASE_TS))
    log.roll()
    assert mgr.cleaner.clean_once(BASE_TS + 60_000) is None, "ratio 1.0 is never exceeded"
    stats = mgr.cleaner.clean_once(BASE_TS + 60_001)
    assert stats is not None and stats.end_offset == 2
    assert read_records(log) == [(1, b"k", b"2")]
    mgr.shutdown()


def test_partial_pass_when_the_offset_map_is_full(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock, cfg(segment_bytes=10_000))
    for i in range(20):
        log.append(rec(b"k%d" % (i % 10), b"%d" % i))
    log.roll()
    with log.lock:
        ltc = log_to_clean(log, *cleanable_offsets(log, None, clock.now)[:2])
    cleaner = Cleaner(OffsetMap(6), load_factor=0.9)  # 5 keys per pass
    end, stats = cleaner.clean(ltc, clock.now)
    assert end == 5
    assert stats.end_offset == 5
    assert len(read_records(log)) == 20, "the keys of 0-4 all recur later"
    while end < 20:
        with log.lock:
            ltc = log_to_clean(log, *cleanable_offsets(log, end, clock.now)[:2])
        end, _ = cleaner.clean(ltc, clock.now)
    assert [o for o, _, _ in read_records(log)] == list(range(10, 20))
    log.close()


def test_segments_are_grouped_up_to_segment_bytes(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock, cfg(segment_bytes=400))
    for i in range(30):
        log.append(rec(b"k%d" % i, b"v" * 20))  # unique keys: nothing shrinks
    log.roll()
    before = [s.size for s in log.segments[:-1]]
    assert len(before) > 4
    stats = clean_log(log, clock.now)
    assert stats is not None
    after = [s.size for s in log.segments[:-1]]
    assert sum(after) == sum(before) and all(s <= 400 for s in after)
    assert stats.groups == len(after) == len(before), "full segments do not merge"
    # a pass that empties them groups by the sizes it found; the next one merges them
    for i in range(30):
        log.append(rec(b"k%d" % i, b"again"))
    log.roll()
    clean_log(log, clock.now, first_dirty_offset=30)
    assert [s.size for s in log.segments[: len(before)]] == [0] * len(before)
    log.append(rec(b"x", b"y"))
    log.roll()
    count = len(log.segments)
    stats = clean_log(log, clock.now, first_dirty_offset=60)
    assert stats is not None
    # the empty ones and the first non-empty one now fit one segment (named 0)
    assert len(log.segments) == count - len(before)
    assert log.segments[0].base_offset == 0 and log.segments[0].size > 0
    assert [o for o, _, _ in read_records(log)] == list(range(30, 61))
    log.close()
    check_partition_dir(tmp_path / "t-0")


# ---------------------------------------------------------------------- batch rules


@pytest.mark.parametrize("codec", list(Compression))
def test_rebuilt_batches_keep_codec_and_parse_in_kafka_python(tmp_path, codec):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    log.append(
        build_batch(
            [(b"a", b"1", [("h", b"v")], BASE_TS), (b"b", b"1", None, BASE_TS + 5)] * 2
            + [(b"c", None, None, BASE_TS + 9)],
            compression=codec,
        ),
        leader_epoch=3,
    )
    log.append(rec(b"a", b"2"))
    log.roll()
    assert clean_log(log, clock.now) is not None
    batches = read_batches(log)
    h, recs, raw = batches[0]
    assert h.compression == codec and h.partition_leader_epoch == 3
    assert (h.base_offset, h.last_offset_delta) == (0, 4), "base and last offset kept"
    assert [(r.offset, r.key, r.value) for r in recs] == [(3, b"b", b"1"), (4, b"c", None)]
    assert h.attributes & 0x40 and h.base_timestamp == clock.now + DR
    kp = DefaultRecordBatch(bytearray(raw))
    assert kp.validate_crc()
    assert kp.compression_type == int(codec)
    got = [(r.offset, r.key, r.value, r.timestamp) for r in kp]
    assert got == [(3, b"b", b"1", BASE_TS + 5), (4, b"c", None, BASE_TS + 9)]
    log.close()


def test_log_append_time_batches_keep_their_time(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock, cfg(message_timestamp_type="LogAppendTime"))
    log.append(build_batch([(b"a", b"1"), (b"b", b"1")]), log_append_time=BASE_TS + 77)
    log.append(rec(b"a", b"2"), log_append_time=BASE_TS + 99)
    log.roll()
    assert clean_log(log, clock.now) is not None
    h, recs, raw = read_batches(log)[0]
    assert h.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert h.max_timestamp == BASE_TS + 77
    assert [(r.offset, r.timestamp) for r in recs] == [(1, BASE_TS + 77)]
    assert [r.timestamp for r in DefaultRecordBatch(bytearray(raw))] == [BASE_TS + 77]
    log.close()


def test_transactional_data_and_markers_are_kept_whole(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    pid, epoch = 4000, 0
    txn = build_batch(
        [(b"a", b"txn"), (b"b", b"txn")],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=0,
        is_transactional=True,
    )
    log.append(txn)
    log.append(
        build_control_batch(
            ControlType.ABORT,
            producer_id=pid,
            producer_epoch=epoch,
            coordinator_epoch=1,
            timestamp=BASE_TS,
        )
    )
    log.append(rec(b"a", b"plain-old"))
    log.append(rec(b"a", b"plain"))
    log.append(rec(b"b", b"plain"))
    log.roll()
    assert clean_log(log, clock.now + 10 * DR) is not None
    got = [(h.base_offset, h.is_transactional, h.is_control) for h, _, _ in read_batches(log)]
    assert got == [(0, True, False), (2, True, True), (4, False, False), (5, False, False)]
    # the aborted records never entered the offset map: a plain record they follow stays
    log.append(
        build_batch(
            [(b"z", b"txn")],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=2,
            is_transactional=True,
        )
    )
    log.append(
        build_control_batch(
            ControlType.COMMIT,
            producer_id=pid,
            producer_epoch=epoch,
            coordinator_epoch=1,
            timestamp=BASE_TS,
        )
    )
    log.roll()
    assert clean_log(log, clock.now, first_dirty_offset=6) is not None
    assert len(read_batches(log)) == 6
    log.close()


def test_last_batch_of_a_producer_survives_as_an_empty_header(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    pid = 77
    for seq, key in enumerate([b"a", b"b", b"c"]):
        log.append(
            build_batch(
                [(key, b"idem", None, BASE_TS)],
                producer_id=pid,
                producer_epoch=2,
                base_sequence=seq,
            )
        )
    for key in (b"a", b"b", b"c"):
        log.append(rec(key, b"new"))
    log.append(rec(b"z", b"last"))
    log.roll()
    assert clean_log(log, clock.now) is not None
    batches = read_batches(log)
    assert [h.base_offset for h, _, _ in batches] == [2, 3, 4, 5, 6]
    h, recs, raw = batches[0]
    assert recs == [] and h.records_count == 0 and h.size == 61
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (pid, 2, 2)
    assert h.base_timestamp == -1 and h.max_timestamp == BASE_TS
    kp = DefaultRecordBatch(bytearray(raw))
    assert kp.validate_crc() and list(kp) == []
    log.close()


# ---------------------------------------------------------------------- the checkpoint file


def test_cleaner_checkpoint_file_survives_restart_and_forgets_deleted_logs(tmp_path):
    clock = FakeClock()
    mgr = _manager(tmp_path, clock, cfg())
    for t in ("x", "y"):
        lg = mgr.get_or_create_log(t, 0)
        for i in range(4):
            lg.append(rec(b"k", b"%d" % i))
        lg.roll()
    assert mgr.cleaner.clean_once(clock.now) is not None
    assert mgr.cleaner.clean_once(clock.now) is not None
    assert mgr.cleaner.clean_once(clock.now) is None
    path = os.path.join(mgr.log_dirs[0], CLEANER_OFFSET_CHECKPOINT_FILE)
    with open(path) as f:
        assert f.read() == "0\n2\nx 0 4\ny 0 4\n"
    mgr.shutdown()
    mgr = _manager(tmp_path, clock, cfg())
    assert mgr.cleaner.checkpoints() == {TopicPartition("x", 0): 4, TopicPartition("y", 0): 4}
    assert mgr.cleaner.clean_once(clock.now) is None
    mgr.delete_log("x", 0)
    assert read_offset_checkpoint(path) == {TopicPartition("y", 0): 4}
    mgr.shutdown()


def test_checkpoint_past_the_log_end_resets_to_the_log_start(tmp_path):
    clock = FakeClock()
    mgr = _manager(tmp_path, clock, cfg())
    lg = mgr.get_or_create_log("t", 0)
    lg.append(rec(b"k", b"1"))
    lg.append(rec(b"k", b"2"))
    lg.roll()
    mgr.cleaner._state.checkpoints[mgr.log_dirs[0]][TopicPartition("t", 0)] = 99
    stats = mgr.cleaner.clean_once(clock.now)
    assert stats is not None and stats.first_dirty_offset == 0 and stats.end_offset == 2
    mgr.shutdown()


# ---------------------------------------------------------------------- concurrency


def test_reads_and_appends_go_on_while_a_log_is_cleaned(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock)
    for i in range(40):
        log.append(rec(b"k%d" % (i % 4), b"%d" % i))
    log.roll()
    before = read_records(log)
    pinned = log.read(0, 1 << 20)  # slices cut before the swap
    pinned_bytes = b"".join(s.read() for s in pinned.slices)
    inside = threading.Event()
    go_on = threading.Event()
    calls = [0]

    def pause(_log):
        calls[0] += 1
        if calls[0] == 30:
            inside.set()
            assert go_on.wait(30)

    with log.lock:
        ltc = log_to_clean(log, *cleanable_offsets(log, None, clock.now)[:2])
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(
            out=Cleaner(OffsetMap(1000), check_done=pause).clean(ltc, clock.now)
        )
    )
    worker.start()
    assert inside.wait(30)
    # the cleaner is mid-pass and holds no lock: reads and appends proceed
    assert read_records(log) == before
    for i in range(5):
        log.append(rec(b"k%d" % i, b"during"))
    go_on.set()
    worker.join(30)
    assert not worker.is_alive() and result["out"][0] == 40
    got = read_records(log)
    assert [o for o, _, _ in got] == [36, 37, 38, 39, 40, 41, 42, 43, 44]
    assert b"".join(s.read() for s in pinned.slices) == pinned_bytes
    log.close()


def test_swap_is_refused_when_the_log_changed_meanwhile(tmp_path):
    clock = FakeClock()
    log = open_log(tmp_path / "t-0", clock, cfg(cleanup_policy=("compact", "delete")))
    for i in range(20):
        log.append(rec(b"k", b"%d" % i))
    log.roll()
    with log.lock:
        ltc = log_to_clean(log, *cleanable_offsets(log, None, clock.now)[:2])
    calls = [0]

    def retention_meanwhile(_log):
        calls[0] += 1
        if calls[0] == 25:
            log.delete_records(log.segments[1].base_offset)

    from storage.cleaner import _Aborted

    with pytest.raises(_Aborted):
        Cleaner(OffsetMap(1000), check_done=retention_meanwhile).clean(ltc, clock.now)
    assert not [n for n in os.listdir(log.dir) if n.endswith((".cleaned", ".swap"))]
    assert read_records(log)[-1] == (19, b"k", b"19")
    log.close()


def test_handle_cache_never_releases_a_segment_whose_log_is_busy(tmp_path):
    cache = HandleCache(capacity=1)
    config = LogConfig()
    a = Segment.create(tmp_path, 0, config, now_ms=0, handle_cache=cache)
    b = Segment.create(tmp_path, 100, config, now_ms=0, handle_cache=cache)
    a.owner_lock, b.owner_lock = threading.RLock(), threading.RLock()
    a.deactivate()
    b.deactivate()
    a.file()
    held, release = threading.Event(), threading.Event()

    def hold():
        with a.owner_lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(30)
    b.file()  # would evict a, but a's log is busy in another thread
    assert a._file is not None
    release.set()
    t.join(30)
    b.release_handles()
    a.file()
    b.file()  # now a is evicted
    assert a._file is None
    a.close()
    b.close()


# ---------------------------------------------------------------------- crash safety


def _cleanable_log(path, clock) -> PartitionLog:
    log = open_log(path, clock, cfg(segment_bytes=10_000))
    for i in range(12):
        log.append(rec(b"k%d" % (i % 3), b"%d" % i))
    log.roll()
    log.append(rec(b"tail", b"t"))
    return log


def test_a_crash_at_each_rename_of_the_swap_recovers_to_before_or_after(tmp_path, monkeypatch):
    clock = FakeClock()
    template = tmp_path / "template"
    log = _cleanable_log(template, clock)
    before = read_records(log)
    log.close()
    ref = tmp_path / "ref"
    shutil.copytree(template, ref)
    log = open_log(ref, clock)
    clean_log(log, clock.now)
    after = read_records(log)
    log.close()
    assert after != before
    real_replace = os.replace
    n = 0
    while True:
        work = tmp_path / f"crash{n}"
        shutil.copytree(template, work)
        log = open_log(work, clock)
        count = [0]

        def crashing_replace(src, dst, _limit=n, _count=count):
            if _count[0] >= _limit:
                raise OSError("simulated crash")
            _count[0] += 1
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", crashing_replace)
        try:
            clean_log(log, clock.now)
            finished = True
        except OSError:
            finished = False
        finally:
            monkeypatch.setattr(os, "replace", real_replace)
        log.release_handles()
        reopened = open_log(work, clock, had_clean_shutdown=False)
        got = read_records(reopened)
        # .cleaned -> .swap takes 3 renames; once all 3 are done the swap completes
        assert got == (after if n >= 3 else before), n
        assert reopened.swap_recovery or n == 0 or finished
        assert not [f for f in os.listdir(work) if f.endswith((".cleaned", ".swap"))]
        reopened.close()
        check_partition_dir(work)
        if finished:
            break
        n += 1
    assert n == 9, "3 renames to .swap, 3 of the old segment to .deleted, 3 back"


def _write(path, data=b""):
    with open(path, "wb") as f:
        f.write(data)


def test_recover_interrupted_swaps_by_hand(tmp_path):
    seg = build_batch([(b"k", b"v")], base_offset=5)
    d = tmp_path / "p"
    d.mkdir()
    # old segments 0 and 5; a complete swap replacing [0, 6); a snapshot in range
    for base in (0, 5):
        for ext in (".log", ".index", ".timeindex"):
            _write(d / f"{base:020d}{ext}", b"old")
    _write(d / f"{5:020d}.snapshot", b"snap")
    _write(d / f"{0:020d}.log.swap", seg)
    _write(d / f"{0:020d}.index.swap")
    _write(d / f"{0:020d}.timeindex.swap")
    _write(d / f"{9:020d}.log", b"later")
    actions = recover_interrupted_swaps(d)
    assert sorted(os.listdir(d)) == [
        f"{0:020d}.index",
        f"{0:020d}.log",
        f"{0:020d}.timeindex",
        f"{5:020d}.snapshot",
        f"{9:020d}.log",
    ]
    assert (d / f"{0:020d}.log").read_bytes() == seg
    assert any("completed swap" in a for a in actions)

    # an incomplete swap (the index still .cleaned) is rolled back
    e = tmp_path / "q"
    e.mkdir()
    _write(e / f"{0:020d}.log", b"old")
    _write(e / f"{0:020d}.log.swap", seg)
    _write(e / f"{0:020d}.index.cleaned")
    _write(e / f"{0:020d}.timeindex.cleaned")
    recover_interrupted_swaps(e)
    assert sorted(os.listdir(e)) == [f"{0:020d}.log"]
    assert (e / f"{0:020d}.log").read_bytes() == b"old"
