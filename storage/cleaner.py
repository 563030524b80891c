"""Log compaction: Kafka's `LogCleaner`, `LogCleanerManager`, `Cleaner` and `OffsetMap`.

How this works
--------------
A log with `cleanup.policy` containing `compact` keeps, in its cleaned part, only the last
record of every key (Kafka's `storage/.../internals/log/{LogCleaner,LogCleanerManager,
Cleaner,LogToClean,SkimpyOffsetMap}.java`, `MemoryRecords.filterTo`):

* **Which log, which range.** The cleaner checkpoint (`cleaner-offset-checkpoint` in each
  log dir, Kafka's offset-checkpoint format) holds each log's *first dirty offset*: below
  it the log was cleaned. The *first uncleanable offset* is the lowest of the last stable
  offset, the active segment's base offset and, with `min.compaction.lag.ms`, the first
  segment holding a record newer than now - lag; it is then rounded down to a segment
  boundary. Dirty ratio = bytes of the segments in [first dirty, first uncleanable) /
  bytes of the log below that. The log with the highest ratio above
  `min.cleanable.dirty.ratio` is cleaned, or any log whose oldest dirty segment's first
  batch is older than `max.compaction.lag.ms`.
* **Offset map.** The dirty range is read once: key -> last offset, up to
  `slots * load factor` keys (Kafka's map is 24 bytes a slot, so `slots` = buffer / 24;
  ours holds the exact keys). A full map ends the pass early: the first dirty offset
  advances only as far as the map reached.
* **Cleaning.** Every segment from the log's start up to the map's end is rewritten, in
  groups of consecutive segments whose total log size fits `segment.bytes` and whose
  indexes fit `segment.index.bytes`. A record survives when it is past the map, or it is
  the latest of its key and either has a value or is a tombstone whose batch's delete
  horizon has not passed; keyless records go. A batch whose records all survive is copied
  byte for byte; otherwise it is rebuilt with the same codec, timestamp type, producer
  fields, leader epoch, base offset and *last offset* (offsets keep their gaps). The
  first pass that keeps a tombstone stamps its batch with a delete horizon, as Kafka 4.x:
  attribute bit 6 set and baseTimestamp = now + `delete.retention.ms` (record timestamp
  deltas are re-based, so record timestamps do not change); a pass after the horizon
  drops the tombstone. An emptied batch is kept as a bare 61-byte header when it is the
  last batch of the pass (Kafka keeps the last offset) or the last batch of its producer
  id (the idempotent producer's sequence must survive: see `_ProducerTails`).
* **Transactions.** Transactional batches and control batches (markers) are kept whole
  and their keys never enter the offset map, so nothing a read_committed consumer could
  see is lost, and the cleaned segment carries the `.txnindex` entries of the segments
  it replaces (every aborted transaction stays described). Kafka goes further: it
  removes aborted transactions' data and drops markers after their delete horizon; that
  is not done here yet. The cleanable range ends at the last stable offset.
* **Swap.** A group is written to `<base>.log.cleaned` (+ `.index.cleaned`,
  `.timeindex.cleaned`), fsync'd, given the last source segment's mtime, then swapped in
  under the log's lock by `PartitionLog.replace_segments` (`.cleaned` -> `.swap`, old
  segments -> `.deleted`, `.swap` -> final names); `recover_interrupted_swaps` finishes
  or rolls back a swap cut short by a crash.

Threading: `LogCleaner.clean_once` is blocking and meant for a worker thread
(`trio.to_thread.run_sync`). It reads segment files through descriptors of its own and
writes the cleaned segment without touching the log; it takes a log's lock only to
snapshot its segments and to swap, so appends, reads and fetches go on meanwhile. A read
that started before the swap keeps its file slices (open descriptors of the old files).
If the log changed under the cleaner (retention, truncation, deletion), the swap is
refused and the pass is abandoned. One pass at a time (`log.cleaner.threads` = 1).
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol.errors import ProtocolError
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    BatchHeader,
    Record,
    TimestampType,
    build_batch,
    iter_batches,
    iter_records,
    read_batch_header,
)
from storage.config import LONG_MAX, LogConfig
from storage.errors import StorageError
from storage.index import OffsetIndex, TimeIndex
from storage.log import PartitionLog
from storage.manager import TopicPartition, read_offset_checkpoint, write_offset_checkpoint
from storage.segment import (
    CLEANED_FILE_SUFFIX,
    INDEX_FILE_SUFFIX,
    LOG_FILE_SUFFIX,
    TIME_INDEX_FILE_SUFFIX,
    TXN_INDEX_FILE_SUFFIX,
    Segment,
    filename_prefix_from_offset,
)
from storage.txn_index import AbortedTxn, encode_entry

if TYPE_CHECKING:
    from storage.manager import LogManager

__all__ = [
    "CLEANER_OFFSET_CHECKPOINT_FILE",
    "Cleaner",
    "CleanerStats",
    "LogCleaner",
    "LogToClean",
    "OffsetMap",
    "cleanable_offsets",
    "clean_log",
    "log_to_clean",
]

log = logging.getLogger("odradek.storage.cleaner")

CLEANER_OFFSET_CHECKPOINT_FILE = "cleaner-offset-checkpoint"
#: Kafka's `log.cleaner.dedupe.buffer.size` and `log.cleaner.io.buffer.load.factor`.
DEFAULT_DEDUPE_BUFFER_SIZE = 128 * 1024 * 1024
DEFAULT_LOAD_FACTOR = 0.9
#: SkimpyOffsetMap with MD5: 16-byte hash + 8-byte offset per slot.
_BYTES_PER_SLOT = 24
#: Bytes read from a segment file at a time (grown for a larger batch).
DEFAULT_READ_CHUNK = 1024 * 1024
_DELETE_HORIZON_FLAG = 0x40
_MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD


class _Aborted(Exception):
    """The log changed under the cleaner or cleaning was aborted (Kafka's
    LogCleaningAbortedException): the pass stops, nothing half-done is left."""


# ---------------------------------------------------------------------- offset map


class OffsetMap:
    """key -> latest offset for the dirty range, with Kafka's capacity rule.

    Kafka's `SkimpyOffsetMap` stores 24-byte (MD5, offset) slots in a fixed buffer; this
    one stores the exact keys in a dict but counts capacity the same way, so a pass covers
    as many keys as Kafka's would with the same `log.cleaner.dedupe.buffer.size`."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("the offset map needs at least one slot")
        self.slots = slots
        self._map: dict[bytes, int] = {}
        self.latest_offset = -1

    def clear(self) -> None:
        self._map.clear()
        self.latest_offset = -1

    def put(self, key: bytes, offset: int) -> None:
        self._map[key] = offset
        self.latest_offset = offset

    def get(self, key: bytes) -> int:
        return self._map.get(key, -1)

    def update_latest_offset(self, offset: int) -> None:
        self.latest_offset = offset

    def __len__(self) -> int:
        return len(self._map)

    @property
    def utilization(self) -> float:
        return len(self._map) / self.slots


# ---------------------------------------------------------------------- what to clean


@dataclass
class CleanerStats:
    """What one pass did (Kafka's `CleanerStats`, the parts we track)."""

    topic: str | None = None
    partition: int | None = None
    first_dirty_offset: int = 0
    end_offset: int = 0  # the new first dirty offset
    map_messages_read: int = 0
    map_bytes_read: int = 0
    messages_read: int = 0
    bytes_read: int = 0
    messages_written: int = 0
    bytes_written: int = 0
    invalid_messages: int = 0  # keyless records dropped
    segments_cleaned: int = 0
    groups: int = 0
    buffer_utilization: float = 0.0
    map_seconds: float = 0.0
    seconds: float = 0.0
    aborted: bool = False
    error: str | None = None


@dataclass(frozen=True)
class LogToClean:
    """Kafka's `LogToClean`: a log and its cleanable range, with the dirty ratio."""

    log: PartitionLog
    first_dirty_offset: int
    first_uncleanable_offset: int  # a segment base offset
    clean_bytes: int
    cleanable_bytes: int
    need_compaction_now: bool = False
    topic_partition: TopicPartition | None = None

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        total = self.total_bytes
        return self.cleanable_bytes / total if total else 0.0


def _log_segments(segs: list[Segment], start: int, end: int) -> list[Segment]:
    """Kafka's `logSegments(from, to)`: from the segment holding `start` (or the first
    one after it) to the last one whose base offset is below `end`."""
    bases = [s.base_offset for s in segs]
    i = max(0, bisect.bisect_right(bases, start) - 1)
    out = []
    for s in segs[i:]:
        if s.base_offset >= end:
            break
        out.append(s)
    return out


def _non_active_segments_from(segs: list[Segment], start: int) -> list[Segment]:
    active = segs[-1]
    if start > active.base_offset:
        return []
    return _log_segments(segs, start, active.base_offset)


def _last_stable_offset(plog: PartitionLog) -> int:
    """The last stable offset (cleaning never passes an open transaction)."""
    return plog.last_stable_offset


def cleanable_offsets(
    plog: PartitionLog, last_clean_offset: int | None, now_ms: int
) -> tuple[int, int, bool]:
    """Kafka's `LogCleanerManager.cleanableOffsets`: (first dirty offset, first uncleanable
    offset, whether the checkpoint must be reset). Call with the log's lock held."""
    start = plog.log_start_offset
    checkpoint = start if last_clean_offset is None else last_clean_offset
    force = False
    if checkpoint < start or checkpoint > plog.log_end_offset:
        first_dirty, force = start, True
    else:
        first_dirty = checkpoint
    segs = plog.segments
    lag = max(plog.config.min_compaction_lag_ms, 0)
    candidates = [_last_stable_offset(plog), segs[-1].base_offset]
    if lag > 0:
        for seg in _non_active_segments_from(segs, first_dirty):
            if seg.largest_timestamp() > now_ms - lag:
                candidates.append(seg.base_offset)
                break
    return first_dirty, max(first_dirty, min(candidates)), force


def max_compaction_delay(plog: PartitionLog, first_dirty: int, now_ms: int) -> int:
    """Kafka's `maxCompactionDelay`: how far past `max.compaction.lag.ms` the oldest dirty
    segment's first batch is (0 when it is not)."""
    stamps = [
        ts
        for seg in _non_active_segments_from(plog.segments, first_dirty)
        if (ts := seg.first_batch_timestamp()) > 0
    ]
    earliest = min(stamps, default=LONG_MAX)
    clean_until = now_ms - max(plog.config.max_compaction_lag_ms, 0)
    return clean_until - earliest if earliest < clean_until else 0


def log_to_clean(
    plog: PartitionLog,
    first_dirty: int,
    uncleanable: int,
    need_compaction_now: bool = False,
    tp: TopicPartition | None = None,
) -> LogToClean:
    """Kafka's `LogToClean` + `calculateCleanableBytes`. Call with the log's lock held."""
    segs = plog.segments
    non_active = _non_active_segments_from(segs, uncleanable)
    first_uncleanable = non_active[0].base_offset if non_active else segs[-1].base_offset
    clean_bytes = sum(s.size for s in _log_segments(segs, -1, first_dirty))
    cleanable = sum(
        s.size for s in _log_segments(segs, min(first_dirty, first_uncleanable), first_uncleanable)
    )
    return LogToClean(
        plog, first_dirty, first_uncleanable, clean_bytes, cleanable, need_compaction_now, tp
    )


# ---------------------------------------------------------------------- reading files


def _iter_file_batches(
    fd: int, start: int, end: int, chunk: int
) -> Iterator[tuple[BatchHeader, bytes, int]]:
    """(header, buffer, position in buffer) of each batch in [start, end) of a file."""
    pos = start
    while pos < end:
        buf = os.pread(fd, min(chunk, end - pos), pos)
        consumed = 0
        try:
            for rel, h in iter_batches(buf):
                yield h, buf, rel
                consumed = rel + h.size
        except ProtocolError as e:
            raise StorageError(f"corrupt batch at position {pos + consumed}: {e}") from e
        if consumed == 0:  # a batch larger than the chunk
            if len(buf) < BATCH_HEADER_SIZE:
                raise StorageError(f"segment ends inside a batch header at {pos}")
            h = read_batch_header(buf)
            if h.batch_length < _MIN_BATCH_LENGTH or pos + h.size > end:
                raise StorageError(f"corrupt batch length {h.batch_length} at {pos}")
            buf = os.pread(fd, h.size, pos)
            yield h, buf, 0
            consumed = h.size
        pos += consumed


class _Source:
    """An inactive segment being read by the cleaner through its own descriptor."""

    def __init__(self, plog: PartitionLog, seg: Segment) -> None:
        with plog.lock:
            if plog.closed or not any(s is seg for s in plog.segments) or seg.is_active:
                raise _Aborted(f"segment {seg.base_offset} left the log")
            self.fd = os.open(seg.log_path, os.O_RDONLY)
            self.size = seg.size
        self.segment = seg

    def close(self) -> None:
        os.close(self.fd)


# ---------------------------------------------------------------------- writing


class _CleanedSegmentWriter:
    """Writes `<base>.log.cleaned` and its indexes as `LogSegment.append` would."""

    def __init__(self, dir: str, base_offset: int, config: LogConfig) -> None:
        prefix = os.path.join(dir, filename_prefix_from_offset(base_offset))
        self.base_offset = base_offset
        self.log_path = prefix + LOG_FILE_SUFFIX + CLEANED_FILE_SUFFIX
        self.index_path = prefix + INDEX_FILE_SUFFIX + CLEANED_FILE_SUFFIX
        self.time_index_path = prefix + TIME_INDEX_FILE_SUFFIX + CLEANED_FILE_SUFFIX
        self.txn_index_path = prefix + TXN_INDEX_FILE_SUFFIX + CLEANED_FILE_SUFFIX
        #: The source segments' aborted transactions, carried into the cleaned segment.
        self.aborted: list[AbortedTxn] = []
        self._remove_files()
        self._file = open(self.log_path, "xb")  # noqa: SIM115 - closed in finish/abort
        self._oi = OffsetIndex(self.index_path, base_offset, config.segment_index_bytes)
        self._ti = TimeIndex(self.time_index_path, base_offset, config.segment_index_bytes)
        self._interval = config.index_interval_bytes
        self.size = 0
        self._since_index = 0
        self._max_ts = NO_TIMESTAMP
        self._max_ts_offset = base_offset

    def append(self, data: bytes | memoryview, last_offset: int, max_timestamp: int) -> None:
        physical = self.size
        if max_timestamp > self._max_ts:
            self._max_ts, self._max_ts_offset = max_timestamp, last_offset
        if self._since_index > self._interval:
            if not self._oi.is_full():
                self._oi.append(last_offset, physical)
            if not self._ti.is_full():
                self._ti.maybe_append(self._max_ts, self._max_ts_offset)
            self._since_index = 0
        self._since_index += len(data)
        self._file.write(data)
        self.size += len(data)

    def finish(self, mtime_ns: int) -> None:
        """Final time-index entry, trim, fsync, and the source's mtime (Kafka keeps it)."""
        self._ti.maybe_append(self._max_ts, self._max_ts_offset, skip_full_check=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        for idx in (self._oi, self._ti):
            idx.trim_to_valid_size()
            idx.flush()
            idx.close()
        if self.aborted:
            with open(self.txn_index_path, "xb") as f:
                f.write(b"".join(encode_entry(t) for t in self.aborted))
                f.flush()
                os.fsync(f.fileno())
        os.utime(self.log_path, ns=(mtime_ns, mtime_ns))

    def abort(self) -> None:
        try:
            if not self._file.closed:
                self._file.close()
        finally:
            self._oi.close_handler()
            self._ti.close_handler()
            self._remove_files()

    def _remove_files(self) -> None:
        for path in (self.log_path, self.index_path, self.time_index_path,
                     self.txn_index_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


# ---------------------------------------------------------------------- producer tails


class _ProducerTails:
    """Which batch must survive (at least as an empty header) for each producer id.

    Kafka keeps the batch holding an *active* producer's last data offset (or its last
    marker) so the producer's sequence and epoch survive compaction. With the log's
    producer state (`PartitionLog.producer_state`) that exact rule applies; a log without
    one keeps the last batch of every producer id in the cleaned range, a superset."""

    def __init__(
        self, active: Mapping[int, tuple[int | None, int]] | None, last_batch: dict[int, int]
    ) -> None:
        self._active = active
        self._last_batch = last_batch

    def must_keep(self, h: BatchHeader) -> bool:
        if h.producer_id < 0:
            return False
        if self._active is not None:
            entry = self._active.get(h.producer_id)
            if entry is None:
                return False
            last_data, epoch = entry
            if last_data is not None:
                return h.base_offset + h.last_offset_delta == last_data
            return h.is_control and h.producer_epoch == epoch
        return self._last_batch.get(h.producer_id) == h.base_offset + h.last_offset_delta


# ---------------------------------------------------------------------- the cleaner


class Cleaner:
    """Cleans one log's range (Kafka's `Cleaner`). Reusable; not thread-safe."""

    def __init__(
        self,
        offset_map: OffsetMap,
        *,
        load_factor: float = DEFAULT_LOAD_FACTOR,
        read_chunk: int = DEFAULT_READ_CHUNK,
        check_done: Callable[[PartitionLog], None] | None = None,
    ) -> None:
        if offset_map.slots * load_factor <= 1:
            raise ValueError(
                "offset map is too small to fit in even a single message, so log cleaning "
                "will never make progress"
            )
        self.offset_map = offset_map
        self.load_factor = load_factor
        self.read_chunk = read_chunk
        self._check_done = check_done

    def _check(self, plog: PartitionLog) -> None:
        if plog.closed:
            raise _Aborted("log closed")
        if self._check_done is not None:
            self._check_done(plog)

    def clean(self, ltc: LogToClean, now_ms: int) -> tuple[int, CleanerStats]:
        """Clean `ltc.log` below `ltc.first_uncleanable_offset`. Returns the new first
        dirty offset and the stats. Raises `_Aborted` (nothing swapped after that point)."""
        plog = ltc.log
        stats = CleanerStats(
            topic=plog.topic, partition=plog.partition, first_dirty_offset=ltc.first_dirty_offset
        )
        t0 = time.perf_counter()
        upper = ltc.first_uncleanable_offset
        with plog.lock:
            segs = plog.segments
            dirty = _log_segments(segs, ltc.first_dirty_offset, upper)
            start_pos = 0
            if dirty and ltc.first_dirty_offset > dirty[0].base_offset:
                start_pos = dirty[0].offset_index().lookup(ltc.first_dirty_offset).position
        self._build_offset_map(plog, dirty, ltc.first_dirty_offset, upper, start_pos, stats)
        end_offset = self.offset_map.latest_offset + 1
        stats.map_seconds = time.perf_counter() - t0
        with plog.lock:
            segs = plog.segments
            to_clean = _log_segments(segs, 0, end_offset)
            groups = self._group_segments_by_size(
                to_clean, plog.config.segment_size, plog.config.segment_index_bytes, upper
            )
            active_producers = _last_records_of_active_producers(plog)
        tails = _ProducerTails(
            active_producers,
            {} if active_producers is not None else self._producer_tails(plog, to_clean),
        )
        for group in groups:
            self._clean_segments(plog, group, now_ms, stats, tails, upper)
            stats.groups += 1
        stats.end_offset = end_offset
        stats.buffer_utilization = self.offset_map.utilization
        stats.seconds = time.perf_counter() - t0
        return end_offset, stats

    # -- the offset map -----------------------------------------------------------------

    def _build_offset_map(
        self,
        plog: PartitionLog,
        dirty: list[Segment],
        start: int,
        end: int,
        start_pos: int,
        stats: CleanerStats,
    ) -> None:
        m = self.offset_map
        m.clear()
        max_desired = int(m.slots * self.load_factor)
        for i, seg in enumerate(dirty):
            nxt = dirty[i + 1].base_offset if i + 1 < len(dirty) else end
            src = _Source(plog, seg)
            try:
                full = self._map_segment(
                    plog, src, start, nxt, start_pos if i == 0 else 0, max_desired, stats
                )
            finally:
                src.close()
            if full:
                return

    def _map_segment(
        self,
        plog: PartitionLog,
        src: _Source,
        start: int,
        next_segment_start: int,
        position: int,
        max_desired: int,
        stats: CleanerStats,
    ) -> bool:
        m = self.offset_map
        for h, buf, rel in _iter_file_batches(src.fd, position, src.size, self.read_chunk):
            self._check(plog)
            if h.is_control or h.is_transactional:
                # kept whole (no transaction index yet): never a reason to drop another record
                stats.map_messages_read += max(h.records_count, 0)
            else:
                for rec in _records(buf, rel, h):
                    if rec.key is not None and rec.offset >= start:
                        if len(m) < max_desired:
                            m.put(rec.key, rec.offset)
                        else:
                            return True
                    stats.map_messages_read += 1
            last = h.base_offset + h.last_offset_delta
            if last >= start:
                m.update_latest_offset(last)
            stats.map_bytes_read += h.size
        m.update_latest_offset(next_segment_start - 1)
        return False

    def _producer_tails(self, plog: PartitionLog, segs: list[Segment]) -> dict[int, int]:
        """Last batch (its last offset) of each producer id in `segs`: headers only."""
        last: dict[int, int] = {}
        for seg in segs:
            src = _Source(plog, seg)
            try:
                for _, h in _iter_file_headers(src.fd, src.size):
                    if h.producer_id >= 0:
                        last[h.producer_id] = h.base_offset + h.last_offset_delta
            finally:
                src.close()
        return last

    # -- grouping -----------------------------------------------------------------------

    @staticmethod
    def _group_segments_by_size(
        segs: list[Segment], max_size: int, max_index_size: int, first_uncleanable: int
    ) -> list[list[Segment]]:
        """Kafka's `groupSegmentsBySize`: consecutive segments whose log bytes fit
        `segment.bytes`, whose index bytes fit `segment.index.bytes`, and whose offsets
        fit one segment's relative (int32) offsets."""
        groups: list[list[Segment]] = []
        rest = list(segs)
        while rest:
            group = [rest.pop(0)]
            log_size = group[0].size
            index_size = _file_size(group[0].index_path)
            time_index_size = _file_size(group[0].time_index_path)
            while rest:
                nxt = rest[0]
                last_offset = rest[1].base_offset - 1 if len(rest) > 1 else first_uncleanable - 1
                if (
                    log_size + nxt.size <= max_size
                    and index_size + _file_size(nxt.index_path) <= max_index_size
                    and time_index_size + _file_size(nxt.time_index_path) <= max_index_size
                    and (nxt.size == 0 or last_offset - group[-1].base_offset <= 2**31 - 1)
                ):
                    group.append(rest.pop(0))
                    log_size += nxt.size
                    index_size += _file_size(nxt.index_path)
                    time_index_size += _file_size(nxt.time_index_path)
                else:
                    break
            groups.append(group)
        return groups

    # -- cleaning -----------------------------------------------------------------------

    def _clean_segments(
        self,
        plog: PartitionLog,
        group: list[Segment],
        now_ms: int,
        stats: CleanerStats,
        tails: _ProducerTails,
        upper: int,
    ) -> None:
        """Clean `group` into one new segment and swap it in (Kafka's `cleanSegments`)."""
        config = plog.config
        dest = _CleanedSegmentWriter(plog.dir, group[0].base_offset, config)
        sizes: list[int] = []
        try:
            mtime_ns = 0
            for seg in group:
                src = _Source(plog, seg)
                try:
                    sizes.append(src.size)
                    mtime_ns = os.fstat(src.fd).st_mtime_ns
                    dest.aborted.extend(seg.txn_index.entries)
                    self._clean_into(plog, src, dest, now_ms, config, stats, tails, upper)
                finally:
                    src.close()
            dest.finish(mtime_ns)
            self._check(plog)
            new = Segment.open_existing(
                plog.dir,
                group[0].base_offset,
                config,
                now_ms=now_ms,
                suffix=CLEANED_FILE_SUFFIX,
            )
        except BaseException:
            dest.abort()
            raise
        # An error inside the swap leaves the files as a crash would: the next open
        # finishes or rolls back the swap (`recover_interrupted_swaps`).
        if not plog.replace_segments(new, group, sizes):
            dest.abort()
            raise _Aborted("the log changed while it was being cleaned")
        stats.segments_cleaned += len(group)

    def _clean_into(
        self,
        plog: PartitionLog,
        src: _Source,
        dest: _CleanedSegmentWriter,
        now_ms: int,
        config: LogConfig,
        stats: CleanerStats,
        tails: _ProducerTails,
        upper: int,
    ) -> None:
        m = self.offset_map
        latest = m.latest_offset
        delete_retention = config.delete_retention_ms
        for h, buf, rel in _iter_file_batches(src.fd, 0, src.size, self.read_chunk):
            self._check(plog)
            stats.bytes_read += h.size
            last = h.base_offset + h.last_offset_delta
            if h.is_control or h.is_transactional:
                # no transaction index yet: transactional data and markers are kept whole
                stats.messages_read += max(h.records_count, 0)
                stats.messages_written += max(h.records_count, 0)
                stats.bytes_written += h.size
                dest.append(memoryview(buf)[rel : rel + h.size], last, h.max_timestamp)
                continue
            horizon = h.base_timestamp if h.attributes & _DELETE_HORIZON_FLAG else None
            retain_deletes = horizon is None or now_ms < horizon
            records = _records(buf, rel, h)
            stats.messages_read += len(records)
            kept: list[Record] = []
            tombstones = False
            for rec in records:
                if rec.offset > latest:
                    keep = True
                elif rec.key is None:
                    stats.invalid_messages += 1
                    keep = False
                else:
                    keep = rec.offset >= m.get(rec.key) and (
                        rec.value is not None or retain_deletes
                    )
                if keep:
                    kept.append(rec)
                    if rec.value is None:
                        tombstones = True
            if kept:
                needs_horizon = tombstones and horizon is None
                if len(kept) == len(records) and not needs_horizon:
                    out: bytes | memoryview = memoryview(buf)[rel : rel + h.size]
                    max_ts = h.max_timestamp
                else:
                    if needs_horizon:
                        horizon = min(now_ms + delete_retention, LONG_MAX)
                    out = _rebuild(h, kept, horizon)
                    max_ts = read_batch_header(out).max_timestamp
                stats.messages_written += len(kept)
            elif last + 1 == upper or tails.must_keep(h):
                out = _empty_batch(h)
                max_ts = h.max_timestamp
            else:
                continue
            stats.bytes_written += len(out)
            dest.append(out, last, max_ts)


def _last_records_of_active_producers(
    plog: PartitionLog,
) -> dict[int, tuple[int | None, int]] | None:
    """Kafka's `lastRecordsOfActiveProducers`: producer id -> (last data offset or None,
    epoch), from the log's producer state; None when the log keeps none."""
    state = getattr(plog, "producer_state", None)
    producers = getattr(state, "producers", None)
    if not isinstance(producers, dict):
        return None
    out: dict[int, tuple[int | None, int]] = {}
    for pid, entry in producers.items():
        last = getattr(entry, "last_data_offset", -1)
        out[pid] = (last if last >= 0 else None, getattr(entry, "producer_epoch", -1))
    return out


def _records(buf: bytes, rel: int, h: BatchHeader) -> list[Record]:
    try:
        return list(iter_records(buf, rel, h))
    except ProtocolError as e:
        raise StorageError(f"cannot read the records of batch {h.base_offset}: {e}") from e


def _rebuild(h: BatchHeader, kept: list[Record], horizon: int | None) -> bytes:
    """The batch with only `kept`, as `MemoryRecords.buildRetainedRecordsInto`: same
    codec, timestamp type, producer fields, leader epoch, base and last offset; baseTimestamp
    is the delete horizon when there is one (bit 6 set)."""
    log_append = h.timestamp_type == TimestampType.LOG_APPEND_TIME
    return build_batch(
        kept,
        base_offset=h.base_offset,
        compression=h.compression,
        timestamp_type=h.timestamp_type,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        is_transactional=h.is_transactional,
        is_control=h.is_control,
        partition_leader_epoch=h.partition_leader_epoch,
        base_timestamp=horizon,
        max_timestamp=h.max_timestamp if log_append else None,
        last_offset_delta=h.last_offset_delta,
        attributes_extra=_DELETE_HORIZON_FLAG if horizon is not None else 0,
    )


def _empty_batch(h: BatchHeader) -> bytes:
    """Kafka's `DefaultRecordBatch.writeEmptyHeader`: no records, offsets and producer
    fields kept, no codec, baseTimestamp -1, maxTimestamp kept."""
    return build_batch(
        [],
        base_offset=h.base_offset,
        timestamp_type=h.timestamp_type,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        is_transactional=h.is_transactional,
        is_control=h.is_control,
        partition_leader_epoch=h.partition_leader_epoch,
        base_timestamp=NO_TIMESTAMP,
        max_timestamp=h.max_timestamp,
        last_offset_delta=h.last_offset_delta,
    )


def _iter_file_headers(fd: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
    pos = 0
    buf = b""
    buf_pos = 0
    while pos + BATCH_HEADER_SIZE <= end:
        rel = pos - buf_pos
        if rel + BATCH_HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(64 * 1024, end - pos), pos)
            buf_pos, rel = pos, 0
            if len(buf) < BATCH_HEADER_SIZE:
                return
        h = read_batch_header(buf, rel)
        if h.batch_length < _MIN_BATCH_LENGTH or pos + h.size > end:
            return
        yield pos, h
        pos += h.size


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def clean_log(
    plog: PartitionLog,
    now_ms: int,
    *,
    first_dirty_offset: int | None = None,
    offset_map: OffsetMap | None = None,
) -> CleanerStats | None:
    """Clean one standalone log now, whatever its dirty ratio (tests, tools). Returns
    None when nothing is cleanable; the caller keeps the returned `end_offset` as the next
    `first_dirty_offset`."""
    with plog.lock:
        first_dirty, uncleanable, _ = cleanable_offsets(plog, first_dirty_offset, now_ms)
        ltc = log_to_clean(plog, first_dirty, uncleanable)
    if ltc.cleanable_bytes == 0:
        return None
    cleaner = Cleaner(offset_map or OffsetMap(DEFAULT_DEDUPE_BUFFER_SIZE // _BYTES_PER_SLOT))
    _, stats = cleaner.clean(ltc, now_ms)
    return stats


# ---------------------------------------------------------------------- the manager


@dataclass
class _State:
    checkpoints: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    in_progress: set[TopicPartition] = field(default_factory=set)
    aborted: set[TopicPartition] = field(default_factory=set)
    uncleanable: dict[TopicPartition, str] = field(default_factory=dict)


class LogCleaner:
    """Compacts the compacted logs of a `LogManager` (Kafka's `LogCleaner` with one
    cleaner thread and its `LogCleanerManager`). Blocking: run `clean_once` in a worker
    thread, every `log.cleaner.backoff.ms` when it returns None, again at once otherwise."""

    def __init__(
        self,
        manager: LogManager,
        *,
        dedupe_buffer_size: int = DEFAULT_DEDUPE_BUFFER_SIZE,
        load_factor: float = DEFAULT_LOAD_FACTOR,
        read_chunk: int = DEFAULT_READ_CHUNK,
    ) -> None:
        self._manager = manager
        self._lock = threading.Lock()  # state and checkpoint files
        self._pass_lock = threading.Lock()  # one cleaning pass at a time
        self._state = _State()
        for d in manager.log_dirs:
            self._state.checkpoints[d] = read_offset_checkpoint(
                os.path.join(d, CLEANER_OFFSET_CHECKPOINT_FILE)
            )
        self._cleaner = Cleaner(
            OffsetMap(max(1, dedupe_buffer_size // _BYTES_PER_SLOT)),
            load_factor=load_factor,
            read_chunk=read_chunk,
            check_done=self._check_done,
        )
        #: Stats of the last pass (Kafka's lastStats), and the dirtiest ratio seen.
        self.last_stats: CleanerStats | None = None
        self.max_dirty_ratio = 0.0

    # -- checkpoints --------------------------------------------------------------------

    def checkpoints(self) -> dict[TopicPartition, int]:
        """Every log's first dirty offset, as in the `cleaner-offset-checkpoint` files."""
        with self._lock:
            out: dict[TopicPartition, int] = {}
            for offsets in self._state.checkpoints.values():
                out.update(offsets)
            return out

    def _update_checkpoint(
        self, d: str, tp: TopicPartition, offset: int | None, remove: bool = False
    ) -> None:
        """Kafka's `updateCheckpoints`: keep entries of logs that still exist, then add or
        remove one; written like every offset checkpoint. Caller holds `_lock`."""
        current = self._state.checkpoints.setdefault(d, {})
        live = {t for t, _ in self._manager.all_logs()}
        updated = {t: o for t, o in current.items() if t in live}
        if remove:
            updated.pop(tp, None)
        elif offset is not None:
            updated[tp] = offset
        self._state.checkpoints[d] = updated
        write_offset_checkpoint(os.path.join(d, CLEANER_OFFSET_CHECKPOINT_FILE), updated)

    def forget(self, topic: str, partition: int, log_dir: str | None = None) -> None:
        """A partition is gone (deleted): abort its cleaning and drop its checkpoint."""
        tp = TopicPartition(topic, partition)
        with self._lock:
            if tp in self._state.in_progress:
                self._state.aborted.add(tp)
            self._state.uncleanable.pop(tp, None)
            for d, offsets in self._state.checkpoints.items():
                if tp in offsets and (log_dir is None or d == log_dir):
                    self._update_checkpoint(d, tp, None, remove=True)

    def maybe_truncate_checkpoint(self, topic: str, partition: int, offset: int) -> None:
        """After `truncate_to(offset)`: a checkpoint past it moves back (Kafka's
        `maybeTruncateCheckpoint`)."""
        tp = TopicPartition(topic, partition)
        with self._lock:
            for d, offsets in self._state.checkpoints.items():
                if offsets.get(tp, 0) > offset:
                    self._update_checkpoint(d, tp, offset)

    def uncleanable_partitions(self) -> dict[TopicPartition, str]:
        with self._lock:
            return dict(self._state.uncleanable)

    # -- choosing -----------------------------------------------------------------------

    def grab_filthiest_log(self, now_ms: int) -> LogToClean | None:
        """Kafka's `grabFilthiestCompactedLog`: the compacted log with the highest dirty
        ratio among those above `min.cleanable.dirty.ratio` or past
        `max.compaction.lag.ms`; marked in progress. None if there is none."""
        with self._lock:
            best: LogToClean | None = None
            self.max_dirty_ratio = 0.0
            for tp, plog in self._manager.all_logs():
                if not plog.config.compact or plog.closed:
                    continue
                if tp in self._state.in_progress or tp in self._state.uncleanable:
                    continue
                d = self._manager.log_dir_of(tp.topic, tp.partition)
                if d is None:
                    continue
                last_clean = self._state.checkpoints.get(d, {}).get(tp)
                with plog.lock:
                    if plog.closed:
                        continue
                    first_dirty, uncleanable, force = cleanable_offsets(plog, last_clean, now_ms)
                    delay = max_compaction_delay(plog, first_dirty, now_ms)
                    ltc = log_to_clean(plog, first_dirty, uncleanable, delay > 0, tp)
                if force:
                    self._update_checkpoint(d, tp, first_dirty)
                if ltc.total_bytes <= 0:
                    continue
                self.max_dirty_ratio = max(self.max_dirty_ratio, ltc.cleanable_ratio)
                eligible = (ltc.need_compaction_now and ltc.cleanable_bytes > 0) or (
                    ltc.cleanable_ratio > plog.config.min_cleanable_dirty_ratio
                )
                if eligible and (best is None or ltc.cleanable_ratio > best.cleanable_ratio):
                    best = ltc
            if best is not None:
                assert best.topic_partition is not None
                self._state.in_progress.add(best.topic_partition)
            return best

    # -- cleaning -----------------------------------------------------------------------

    def _check_done(self, plog: PartitionLog) -> None:
        if plog.topic is None or plog.partition is None:
            return
        tp = TopicPartition(plog.topic, plog.partition)
        with self._lock:
            if tp in self._state.aborted:
                raise _Aborted(f"cleaning of {tp} was aborted")

    def clean_once(self, now_ms: int | None = None) -> CleanerStats | None:
        """One pass of the cleaner thread: pick the filthiest log and clean it. Returns
        its stats, or None when no log needed cleaning. Blocking."""
        with self._pass_lock:
            now = self._manager.clock() if now_ms is None else now_ms
            ltc = self.grab_filthiest_log(now)
            if ltc is None:
                return None
            return self._run(ltc, now)

    def clean_log(self, topic: str, partition: int, now_ms: int | None = None) -> CleanerStats:
        """Clean one log now whatever its dirty ratio (tools, tests). Blocking."""
        tp = TopicPartition(topic, partition)
        with self._pass_lock:
            now = self._manager.clock() if now_ms is None else now_ms
            plog = self._manager.get_log(topic, partition)
            d = self._manager.log_dir_of(topic, partition)
            if plog is None or d is None:
                raise StorageError(f"no log for {tp}")
            with self._lock:
                if tp in self._state.in_progress:
                    raise StorageError(f"{tp} is being cleaned")
                last_clean = self._state.checkpoints.get(d, {}).get(tp)
                with plog.lock:
                    first_dirty, uncleanable, _ = cleanable_offsets(plog, last_clean, now)
                    ltc = log_to_clean(plog, first_dirty, uncleanable, False, tp)
                self._state.in_progress.add(tp)
            return self._run(ltc, now)

    def _run(self, ltc: LogToClean, now: int) -> CleanerStats:
        tp = ltc.topic_partition
        assert tp is not None
        plog = ltc.log
        end = ltc.first_dirty_offset
        stats = CleanerStats(
            topic=tp.topic, partition=tp.partition, first_dirty_offset=ltc.first_dirty_offset
        )
        failed = False
        try:
            if ltc.cleanable_bytes > 0:
                end, stats = self._cleaner.clean(ltc, now)
            stats.end_offset = end
        except _Aborted as e:
            stats.aborted, stats.end_offset, end = True, ltc.first_dirty_offset, -1
            log.info("cleaning of %s-%d stopped: %s", tp.topic, tp.partition, e)
        except Exception as e:  # Kafka marks the partition uncleanable and carries on
            failed = True
            stats.error = f"{type(e).__name__}: {e}"
            log.exception("cleaning of %s-%d failed; not cleaning it again", tp.topic, tp.partition)
        finally:
            with self._lock:
                self._state.in_progress.discard(tp)
                aborted = tp in self._state.aborted
                self._state.aborted.discard(tp)
                d = self._manager.log_dir_of(tp.topic, tp.partition)
                if failed:
                    self._state.uncleanable[tp] = stats.error or "error"
                elif not aborted and end >= 0 and d is not None and not plog.closed:
                    self._update_checkpoint(d, tp, end)
        self.last_stats = stats
        return stats
