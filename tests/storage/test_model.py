"""Stateful property test: PartitionLog against a list-of-batches model, through appends,
reads, rolls, retention, delete_records, truncation and clean/unclean restarts."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from protocol.records import build_batch, iter_batches
from storage.config import LogConfig
from storage.errors import OffsetOutOfRange
from storage.log import PartitionLog
from tests.storage.helpers import BASE_TS, FakeClock

CFG = LogConfig(
    segment_bytes=1500,
    index_interval_bytes=150,
    segment_index_bytes=96,
    retention_ms=-1,
    file_delete_delay_ms=0,
)


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="odradek-model-")
        self.clock = FakeClock()
        self.log = PartitionLog.open(self.dir, CFG, clock=self.clock)
        self.batches: list[tuple[int, int, bytes]] = []  # (base, last, client bytes)
        self.start = 0
        self.leo = 0
        self.serial = 0

    def teardown(self) -> None:
        try:
            self.log.close(flush=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- operations -----------------------------------------------------------------

    @rule(counts=st.lists(st.integers(1, 4), min_size=1, max_size=3), size=st.integers(0, 300))
    def append(self, counts, size):
        blob = b""
        pieces = []
        for n in counts:
            self.serial += 1
            recs = [
                (
                    b"%d" % self.serial,
                    bytes([self.serial % 251]) * size,
                    None,
                    BASE_TS + self.serial,
                )
                for _ in range(n)
            ]
            b = build_batch(recs)
            pieces.append((n, b))
            blob += b
        info = self.log.append(blob)
        assert info.first_offset == self.leo
        for n, b in pieces:
            self.batches.append((self.leo, self.leo + n - 1, b))
            self.leo += n
        assert info.last_offset == self.leo - 1

    @rule(data=st.data(), max_bytes=st.integers(0, 3000), min_one=st.booleans())
    def read(self, data, max_bytes, min_one):
        offset = data.draw(st.integers(self.start - 2, self.leo + 2))
        if offset < self.start or offset > self.leo:
            try:
                self.log.read(offset, max_bytes)
            except OffsetOutOfRange:
                return
            raise AssertionError("expected OffsetOutOfRange")
        got = b"".join(
            s.read() for s in self.log.read(offset, max_bytes, min_one_message=min_one).slices
        )
        expect = [b for b in self.visible() if b[1] >= offset]
        parsed = list(iter_batches(got))
        assert sum(h.size for _, h in parsed) == len(got)
        if expect and min_one:
            assert parsed, "min_one_message returns the first batch"
        if len(parsed) > 1 or not min_one:
            assert len(got) <= max_bytes
        for (pos, h), (base, last, raw) in zip(parsed, expect, strict=False):
            assert (h.base_offset, h.last_offset) == (base, last)
            assert got[pos + 16 : pos + h.size] == raw[16:]
        assert len(parsed) <= len(expect)

    @rule()
    def roll(self):
        self.log.roll()

    @rule(data=st.data())
    def delete_records(self, data):
        offset = data.draw(st.integers(self.start, self.leo))
        assert self.log.delete_records(offset) == max(offset, self.start)
        self.start = max(offset, self.start)
        self._drop_below_start()

    @rule(keep=st.integers(0, 5000))
    def size_retention(self, keep):
        self.log.update_config(LogConfig(**{**_fields(CFG), "retention_bytes": keep}))
        self.log.delete_old_segments(self.clock.now)
        self.log.update_config(CFG)
        assert self.log.log_start_offset >= self.start
        self.start = self.log.log_start_offset
        self._drop_below_start()
        assert self.log.size_in_bytes() >= 0

    @rule(data=st.data())
    def truncate(self, data):
        target = data.draw(st.integers(0, self.leo + 1))
        first_base = self.log.segments[0].base_offset
        changed = self.log.truncate_to(target)
        assert changed == (target < self.leo)
        if not changed:
            return
        if first_base > target:
            self.batches = []
            self.start = self.leo = target
            return
        # the batch containing the target goes whole
        self.leo = min(b[0] for b in self.batches if b[1] >= target)
        self.batches = [b for b in self.batches if b[1] < target]
        self.start = min(self.start, self.leo)

    @rule()
    def clean_restart(self):
        self.log.close()
        self.log = PartitionLog.open(
            self.dir, CFG, clock=self.clock, log_start_offset=self.start, recovery_point=self.leo
        )

    @rule(data=st.data())
    def crash_and_recover(self, data):
        # Abandon the open log as a crash would: no flush, no trim (the active segment keeps
        # its preallocated zero tail), then recover from some recovery point.
        rp = data.draw(st.integers(0, self.leo))
        self.log = PartitionLog.open(
            self.dir,
            CFG,
            clock=self.clock,
            log_start_offset=self.start,
            recovery_point=rp,
            had_clean_shutdown=False,
        )

    def _drop_below_start(self):
        # batches below the log start stay on disk until their segment is deleted
        first_base = self.log.segments[0].base_offset
        self.batches = [b for b in self.batches if b[0] >= first_base]

    def visible(self):
        return [b for b in self.batches if b[1] >= self.start]

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def offsets_match(self):
        assert self.log.log_end_offset == self.leo
        assert self.log.log_start_offset == self.start
        assert self.log.high_watermark == self.leo

    @invariant()
    def contents_match(self):
        got = b"".join(s.read() for s in self.log.read(self.start, 10**8).slices)
        parsed = list(iter_batches(got))
        visible = self.visible()
        assert [(h.base_offset, h.last_offset) for _, h in parsed] == [
            (b[0], b[1]) for b in visible
        ]
        for (pos, h), (_, _, raw) in zip(parsed, visible, strict=True):
            assert got[pos + 16 : pos + h.size] == raw[16:]


def _fields(cfg: LogConfig) -> dict:
    return {f: getattr(cfg, f) for f in cfg.__dataclass_fields__ if f != "overridden"}


# ODRADEK_MODEL_EXAMPLES=5000 for a long soak.
LogModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("ODRADEK_MODEL_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_partition_log_model = LogModel.TestCase
