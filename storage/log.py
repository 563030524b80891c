"""A partition's log: an ordered list of segments, offsets, retention, recovery.

How this works
--------------
`PartitionLog` is Kafka's `UnifiedLog` + `LocalLog` + `LogLoader` without replication or
tiered storage. Its words are offsets, batch bytes and file slices. Idempotent producer
state (`storage/producer_state.py`) is checked on append, snapshotted at each roll and at a
clean shutdown, rebuilt on load, truncation and deletion (`_rebuild_producer_state`).

* **Append**: the caller passes whole v2 batches (as produced by a client, baseOffset
  ignored). Each is checked (length, magic 2, `max.message.bytes`, CRC), the log rolls if
  Kafka's `shouldRoll` says so, and the bytes are copied once into the active segment's
  file with `pwritev`, baseOffset/partitionLeaderEpoch (and LogAppendTime, with a new CRC)
  patched into each batch's header on the way (see storage/segment.py).
  Single node: the high watermark follows the log end offset (`update_high_watermark`
  exists for when it must not).
* **Read**: from the batch containing `offset` (found with the offset index and a short
  forward scan of headers), whole batches up to `max_bytes` - the first one even if it is
  bigger when `min_one_message` - returned as `FileSlice`s. Unlike Kafka, a read that
  exhausts a segment continues into the next one (fewer round trips; same bytes).
* **Transactions**: a transactional batch opens its producer's transaction in the
  partition (`producer_state`: first offset -> producer id); a COMMIT/ABORT marker
  (`append_marker`, Kafka's `MemoryRecords.withEndTransactionMarker` appended with origin
  COORDINATOR) closes it. An ABORT adds an entry to the `.txnindex` of the segment it
  lands in (`storage/txn_index.py`) with the last stable offset of that moment. The
  *first unstable offset* is the first offset of the oldest open transaction (clamped to
  the log start offset); the *last stable offset* (LSO) is that offset, or the high
  watermark when there is none. `read(collect_aborted=True)` returns the aborted
  transactions overlapping what it read (read_committed fetches).
* **Offsets by time**: Kafka's `fetchOffsetByTimestamp`, sentinels included.
* **Retention**: Kafka's `deleteOldSegments`: log-start-offset, size and time breaches
  delete whole segments from the oldest, never past the high watermark; the active segment
  too (after a roll) when all of it is expired. Deleted segments are renamed `*.deleted`
  and unlinked after `file.delete.delay.ms` by `delete_pending_files`.
* **Load/recovery** (`PartitionLog.open`): Kafka's `LogLoader`. Stray `.deleted`/`.cleaned`/
  `.swap` files and orphan indexes are removed. After a clean shutdown nothing is scanned:
  the active segment's indexes are sanity-checked now, the others when first opened (a
  failing index is rebuilt from its log). After an unclean one, every segment from the one
  holding the recovery point on is rescanned and its indexes rebuilt; the first invalid
  batch and everything after it - later segments included - is dropped. Open
  transactions come back with the producer state (snapshot + replay). A `.txnindex` is
  rebuilt (`_rebuild_txn_indexes`: the producer state as of the newest snapshot before
  it, then a replay) for every segment rescanned, rebuilt for missing indexes, or whose
  `.txnindex` fails its sanity check (checked for every segment at each open).
  Truncation cuts `.txnindex` entries with their markers; retention, the cleaner's swap
  and `.deleted` renames move or delete a segment's `.txnindex` with its other files.

Threading: all methods take the log's lock; `flush` holds it only to pick what to sync,
so the broker can run `flush` in a worker thread while appends continue.
"""

from __future__ import annotations

import bisect
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from crc32c import crc32c

from protocol.errors import ProtocolError
from protocol.records import (
    BATCH_HEADER_SIZE,
    CRC_START_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
    ControlType,
    build_control_batch,
    iter_records,
    parse_control_record,
    unpack_batch_header,
)
from storage.config import LogConfig
from storage.errors import (
    CorruptIndex,
    CorruptRecord,
    IndexOffsetOverflow,
    InvalidRecord,
    OffsetOutOfRange,
    RecordTooLarge,
    StorageError,
)
from storage.index import NO_TIMESTAMP
from storage.producer_state import (
    AppendOrigin,
    BatchMetadata,
    CompletedTxn,
    DataBatch,
    ProducerAppend,
    ProducerStateManager,
)
from storage.segment import (
    CLEANED_FILE_SUFFIX,
    DELETED_FILE_SUFFIX,
    LOG_FILE_SUFFIX,
    SWAP_FILE_SUFFIX,
    HandleCache,
    Segment,
    recover_interrupted_swaps,
)
from storage.slices import FileSlice
from storage.txn_index import AbortedTxn

__all__ = [
    "EARLIEST_LOCAL_TIMESTAMP",
    "EARLIEST_TIMESTAMP",
    "LATEST_TIERED_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "MAX_TIMESTAMP",
    "AppendInfo",
    "PartitionLog",
    "ReadInfo",
    "TimestampAndOffset",
    "wall_clock_ms",
]

# ListOffsetsRequest sentinels.
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5

_MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD
_INT32_MAX = 2**31 - 1
_new_tuple = tuple.__new__  # NamedTuples built without their Python-level __new__
_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex|\.txnindex)$")


def wall_clock_ms() -> int:
    """The default clock: Unix time in milliseconds. Tests inject their own."""
    return time.time_ns() // 1_000_000


class AppendInfo(NamedTuple):
    """Result of `PartitionLog.append` (Kafka's `LogAppendInfo`, the parts we have).
    A NamedTuple: it is built on every append."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int  # NO_TIMESTAMP (-1) unless the topic uses LogAppendTime
    log_start_offset: int
    record_count: int
    batch_count: int
    valid_bytes: int
    #: True when the batch duplicates one an idempotent producer already wrote: nothing
    #: was appended, and the offsets (and `log_append_time`) are the original batch's.
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ReadInfo:
    """Result of `PartitionLog.read`: whole batches as file slices, plus the log's offsets
    at the time of the read."""

    slices: list[FileSlice]
    fetch_offset: int
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    first_entry_incomplete: bool = False
    #: With `read(collect_aborted=True)`: (producer id, first offset) of the aborted
    #: transactions overlapping the batches returned (empty when none were).
    aborted_transactions: list[tuple[int, int]] | None = None

    @property
    def size(self) -> int:
        return sum(s.length for s in self.slices)


@dataclass(frozen=True, slots=True)
class TimestampAndOffset:
    timestamp: int
    offset: int
    leader_epoch: int | None = None


class PartitionLog:
    """The log of one partition in its own directory. Create with `PartitionLog.open`."""

    def __init__(
        self,
        dir: str | os.PathLike[str],
        config: LogConfig,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        handle_cache: HandleCache | None = None,
        rng: random.Random | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> None:
        self.dir = os.fspath(dir)
        self.config = config
        self.topic = topic
        self.partition = partition
        self._clock = clock
        self._cache = handle_cache
        self._cache_config(config)
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self._log_start_offset = 0
        self._log_end_offset = 0
        self._high_watermark = 0
        self._recovery_point = 0
        self._last_flush_ms = clock()
        self._pending_deletes: list[tuple[int, Segment]] = []
        self._closed = False
        #: Corrupt indexes found and rebuilt (for logs and tests).
        self.index_rebuilds: list[str] = []
        #: Bytes cut off by recovery at the last open.
        self.recovered_truncated_bytes = 0
        #: What `recover_interrupted_swaps` did at the last open.
        self.swap_recovery: list[str] = []
        #: False: an append that reaches `flush.messages` does not fsync itself; the caller
        #: checks `flush_due()` and runs `flush()` in a worker thread before acknowledging.
        self.inline_flush = True
        #: Idempotent producers' state (storage/producer_state.py), loaded by `open`.
        self.producer_state = ProducerStateManager(
            self.dir,
            topic_partition=f"{topic}-{partition}" if topic is not None else "",
        )

    # ------------------------------------------------------------------ loading

    @classmethod
    def open(
        cls,
        dir: str | os.PathLike[str],
        config: LogConfig,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        had_clean_shutdown: bool = True,
        handle_cache: HandleCache | None = None,
        rng: random.Random | None = None,
        topic: str | None = None,
        partition: int | None = None,
    ) -> PartitionLog:
        """Load (or create) the log in `dir`, recovering it if the stop was unclean.

        `recovery_point` and `log_start_offset` come from the log dir's checkpoint files;
        `had_clean_shutdown` from the clean-shutdown marker.
        """
        log = cls(
            dir,
            config,
            clock=clock,
            handle_cache=handle_cache,
            rng=rng,
            topic=topic,
            partition=partition,
        )
        os.makedirs(log.dir, exist_ok=True)
        with log._lock:
            log._load(recovery_point, log_start_offset, had_clean_shutdown)
        return log

    def _create_segment(self, base_offset: int) -> Segment:
        seg = Segment.create(
            self.dir,
            base_offset,
            self.config,
            now_ms=self._clock(),
            roll_jitter_ms=self.config.random_segment_jitter(self._rng),
            handle_cache=self._cache,
        )
        seg.on_corrupt_index = self._note_corrupt_index
        seg.owner_lock = self._lock
        self._segments.append(seg)
        self._bases.append(base_offset)
        return seg

    def _load(self, recovery_point: int, log_start_checkpoint: int, clean: bool) -> None:
        self.swap_recovery = recover_interrupted_swaps(self.dir)  # a cleaner swap cut short
        names = sorted(os.listdir(self.dir))
        log_bases: list[int] = []
        present: set[str] = set()
        for name in names:
            path = os.path.join(self.dir, name)
            if not os.path.isfile(path):
                continue
            if name.endswith((DELETED_FILE_SUFFIX, CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX)):
                os.unlink(path)  # Kafka's removeTempFilesAndCollectSwapFiles
                continue
            m = _SEGMENT_FILE.match(name)
            if m is None:
                continue
            present.add(name)
            if m.group(2) == LOG_FILE_SUFFIX:
                log_bases.append(int(m.group(1)))
        for name in present:
            m = _SEGMENT_FILE.match(name)
            assert m is not None
            if m.group(2) != LOG_FILE_SUFFIX and m.group(1) + LOG_FILE_SUFFIX not in present:
                os.unlink(os.path.join(self.dir, name))  # orphaned index

        now = self._clock()
        for base in sorted(log_bases):
            seg = Segment.open_existing(
                self.dir,
                base,
                self.config,
                now_ms=now,
                roll_jitter_ms=self.config.random_segment_jitter(self._rng),
                handle_cache=self._cache,
            )
            seg.on_corrupt_index = self._note_corrupt_index
            seg.owner_lock = self._lock
            self._segments.append(seg)
            self._bases.append(base)

        # Segments without index files are rebuilt whatever the shutdown was.
        rebuilt: set[int] = set()
        for seg in self._segments:
            if not seg.has_index_files():
                self.index_rebuilds.append(f"{seg.log_path}: missing index")
                seg.recover()
                rebuilt.add(seg.base_offset)

        truncated_total = 0
        if not clean and self._segments:
            first = max(0, bisect.bisect_right(self._bases, recovery_point) - 1)
            i = first
            while i < len(self._segments):
                seg = self._segments[i]
                truncated = seg.recover() if seg.base_offset not in rebuilt else 0
                rebuilt.add(seg.base_offset)  # its transaction index is rebuilt too
                truncated_total += truncated
                if truncated > 0 and i + 1 < len(self._segments):
                    # an invalid batch: everything after it goes too
                    for later in self._segments[i + 1 :]:
                        later.delete_files()
                    del self._segments[i + 1 :]
                    del self._bases[i + 1 :]
                    break
                i += 1
        elif self._segments:
            last = self._segments[-1]
            if last.base_offset not in rebuilt:
                try:
                    last.sanity_check()
                except CorruptIndex as e:
                    self._note_corrupt_index(last, e)
                    last.recover()
                    rebuilt.add(last.base_offset)
        self.recovered_truncated_bytes = truncated_total

        log_end: int | None = None
        if self._segments:
            log_end = self._segments[-1].read_next_offset()
            if log_end < log_start_checkpoint:
                for seg in self._segments:
                    seg.delete_files()
                self._segments.clear()
                self._bases.clear()
                log_end = None
        if not self._segments:
            self._create_segment(log_start_checkpoint)
            log_end = log_start_checkpoint
        assert log_end is not None
        self._segments[-1].activate()
        self._log_end_offset = log_end
        self._log_start_offset = max(log_start_checkpoint, self._segments[0].base_offset)
        self._high_watermark = log_end
        self._recovery_point = log_end if clean else min(recovery_point, log_end)
        self.producer_state.remove_stray_snapshots(self._bases)
        self._rebuild_producer_state(log_end, reload_from_clean_shutdown=clean)
        for seg in self._segments:
            if seg.base_offset not in rebuilt and seg.txn_index.exists():
                try:
                    seg.txn_index.sanity_check()
                except CorruptIndex as e:
                    self._note_corrupt_index(seg, e)
                    rebuilt.add(seg.base_offset)
        self._rebuild_txn_indexes({b for b in rebuilt if b in set(self._bases)})

    def _rebuild_txn_indexes(self, targets: set[int]) -> None:
        """Rebuild the `.txnindex` of the segments based at `targets` from their batches
        (Kafka's `LogSegment.recover` with the producer state as of the segment's start).

        A scratch producer state is restored from the newest snapshot at or below the
        first target and the batches are replayed one by one from there; each aborted
        transaction completed in a target segment is appended to that segment's index
        with the last stable offset of that moment. The log's own state is untouched."""
        if not targets:
            return
        scratch = ProducerStateManager(
            self.dir, topic_partition=self.producer_state.topic_partition,
            producer_id_expiration_ms=self.producer_state.producer_id_expiration_ms)
        scratch.load_at(min(targets), self._clock())
        start = max(scratch.map_end_offset, self._log_start_offset)
        last_target = max(targets)
        for i in range(max(0, bisect.bisect_right(self._bases, start) - 1), len(self._bases)):
            seg = self._segments[i]
            if seg.base_offset > last_target:
                break
            rebuild = seg.base_offset in targets
            if rebuild:
                seg.txn_index.reset()
            found = seg.translate_offset(max(start, seg.base_offset))
            if found is None:
                continue
            for pos, h in seg.iter_headers(found[0]):
                if h.producer_id < 0:
                    continue
                data = seg.read_bytes(pos, h.size) if h.is_control else None
                pending = scratch.prepare(AppendOrigin.REPLICATION)
                try:
                    pending.append(_data_batch(data, 0, h, h.base_offset, None))
                except StorageError:
                    continue  # what the log's own replay also refuses
                for txn in pending.commit():
                    if rebuild and txn.is_aborted:
                        seg.txn_index.append(AbortedTxn(
                            txn.producer_id, txn.first_offset, txn.last_offset,
                            scratch.last_stable_offset_of(txn)))
                    scratch.complete_txn(txn)

    def _note_corrupt_index(self, seg: Segment, e: CorruptIndex) -> None:
        self.index_rebuilds.append(f"{seg.log_path}: {e}")

    # ------------------------------------------------------------------ offsets

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def last_flush_ms(self) -> int:
        return self._last_flush_ms

    def update_high_watermark(self, offset: int) -> int:
        """Set the high watermark, clamped to [log_start_offset, log_end_offset]."""
        with self._lock:
            self._high_watermark = min(max(offset, self._log_start_offset), self._log_end_offset)
            self.producer_state.on_high_watermark_updated(self._high_watermark)
            return self._high_watermark

    @property
    def segments(self) -> list[Segment]:
        """A snapshot of the segments, oldest first."""
        with self._lock:
            return list(self._segments)

    @property
    def active_segment(self) -> Segment:
        return self._segments[-1]

    def size_in_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    def unflushed_messages(self) -> int:
        return self._log_end_offset - self._recovery_point

    def is_empty(self) -> bool:
        return self._log_start_offset == self._log_end_offset

    # ------------------------------------------------------------------ append

    def append(
        self,
        batches: bytes | bytearray | memoryview,
        *,
        leader_epoch: int = 0,
        log_append_time: int | None = None,
        validated: bool = False,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Append whole v2 batches, assigning offsets from the log end offset.

        The input's baseOffsets are ignored (rewritten in the log); partitionLeaderEpoch
        becomes `leader_epoch`. `log_append_time` stamps every batch LogAppendTime (CRC
        rewritten); when None and the topic's `message.timestamp.type` is LogAppendTime,
        the clock's time is used. Raises `InvalidRecord` (not whole v2 batches),
        `CorruptRecord` (CRC), `RecordTooLarge` (`max.message.bytes`). An empty input
        appends nothing and returns offsets -1. `validated=True` skips the CRC check (the
        broker validated the batch already: `protocol.validation`).

        Batches with a producer id go through the producer state (`origin` says how
        strictly): a duplicate of a retained batch appends nothing and returns its original
        offsets with `duplicate=True`; `OutOfOrderSequence`, `InvalidProducerEpoch` and
        `InvalidTxnState` reject the append before anything is written.
        """
        mv = memoryview(batches)
        if type(batches) is not bytes and (mv.ndim != 1 or mv.itemsize != 1):
            mv = mv.cast("B")
        n = mv.nbytes
        with self._lock:
            if self._closed:
                self._check_open()
            if n == 0:
                return _new_tuple(AppendInfo, (
                    -1, -1, NO_TIMESTAMP, -1, NO_TIMESTAMP, self._log_start_offset, 0, 0, 0,
                    False))
            if (
                n >= BATCH_HEADER_SIZE
                and log_append_time is None
                and not self._config_log_append_time
            ):
                # The hot path: one batch, no producer id, CreateTime (what a client
                # without idempotence sends). Anything else takes the general path below.
                h0 = unpack_batch_header(mv, 0)
                delta = h0[6]  # indexes follow BatchHeader's field order
                if (
                    h0[1] + LOG_OVERHEAD == n  # batch_length: exactly one batch
                    and h0[3] == MAGIC
                    and h0[9] < 0  # producer_id
                    and delta >= 0
                    and n <= self._max_message_bytes
                    and (validated or crc32c(mv[CRC_START_OFFSET:]) == h0[4])
                ):
                    first = self._log_end_offset
                    last = first + delta
                    max_ts = h0[8]
                    if self._segments[-1].append_one(
                        mv, n, first, last, max_ts, leader_epoch, self._segment_size,
                        self._max_segment_ms, self._clock,
                    ):
                        self._log_end_offset = self._high_watermark = last + 1
                        self.producer_state.update_map_end_offset(last + 1)
                        if (
                            self.inline_flush
                            and last + 1 - self._recovery_point >= self._flush_messages
                        ):
                            self.flush()
                        if max_ts <= NO_TIMESTAMP:
                            max_ts, last_ts_offset = NO_TIMESTAMP, -1
                        else:
                            last_ts_offset = last
                        return _new_tuple(AppendInfo, (
                            first, last, max_ts, last_ts_offset, NO_TIMESTAMP,
                            self._log_start_offset, h0[12], 1, n, False,
                        ))
                    # the segment must roll: the general path does it
            # One pass over the headers, no per-record work: frame and check each batch.
            # (Indexes into the header tuple follow BatchHeader's field order.)
            parsed: list[tuple[int, BatchHeader]] = []
            pos = offsets = records = 0
            max_ts = NO_TIMESTAMP
            has_producer = False
            while pos < n:
                if n - pos < BATCH_HEADER_SIZE:
                    raise InvalidRecord(f"{n - pos} trailing bytes are not a whole record batch")
                h = _new_tuple(BatchHeader, unpack_batch_header(mv, pos))
                size = h[1] + LOG_OVERHEAD  # batch_length
                if h[3] != MAGIC or size < BATCH_HEADER_SIZE or pos + size > n:
                    self._raise_malformed(h, pos, n)
                if size > self._max_message_bytes:
                    raise RecordTooLarge(
                        f"the record batch size {size} exceeds the maximum configured value "
                        f"of {self._max_message_bytes} (max.message.bytes)"
                    )
                delta = h[6]  # last_offset_delta
                if delta < 0:
                    raise InvalidRecord(f"negative lastOffsetDelta {delta}")
                if not validated and crc32c(mv[pos + CRC_START_OFFSET : pos + size]) != h[4]:
                    raise CorruptRecord(f"record batch at {pos} is corrupt (stored crc = {h.crc})")
                parsed.append((pos, h))
                offsets += delta + 1
                records += h[12]  # records_count
                if h[8] > max_ts:  # max_timestamp
                    max_ts = h[8]
                if h[9] >= 0:  # producer_id
                    has_producer = True
                pos += size

            if log_append_time is None and self._config_log_append_time:
                log_append_time = self._clock()
            if log_append_time is not None:
                max_ts = log_append_time
            first = self._log_end_offset
            last = first + offsets - 1
            producers: ProducerAppend | None = None
            if has_producer:
                checked = self._check_producers(mv, parsed, first, log_append_time, origin)
                if isinstance(checked, BatchMetadata):
                    return AppendInfo(checked.first_offset, checked.last_offset,
                                      NO_TIMESTAMP, -1, checked.timestamp,
                                      self._log_start_offset, 0, 0, 0, duplicate=True)
                producers = checked
            seg = self._segments[-1]
            if seg.should_roll_fast(n, max_ts, last, self._segment_size, self._max_segment_ms,
                                    self._clock):
                seg = self._roll(first)
                if last - seg.base_offset > _INT32_MAX:
                    raise IndexOffsetOverflow(
                        f"offset {last} does not fit segment {seg.base_offset}'s index"
                    )
            seg_max_ts, max_ts_offset = seg.append_batches(
                mv, n, parsed, first, leader_epoch, log_append_time
            )
            self._log_end_offset = self._high_watermark = last + 1
            if producers is not None:
                completed = producers.commit()
                if completed:
                    self._complete_transactions(seg, completed)
            self.producer_state.update_map_end_offset(last + 1)
            if self.inline_flush and last + 1 - self._recovery_point >= self._flush_messages:
                self.flush()
            return _new_tuple(AppendInfo, (
                first,
                last,
                seg_max_ts,
                max_ts_offset,
                NO_TIMESTAMP if log_append_time is None else log_append_time,
                self._log_start_offset,
                records,
                len(parsed),
                n,
                False,
            ))

    def append_marker(
        self,
        producer_id: int,
        producer_epoch: int,
        coordinator_epoch: int,
        commit: bool,
        *,
        timestamp_ms: int | None = None,
        leader_epoch: int = 0,
    ) -> AppendInfo:
        """Write a COMMIT or ABORT transaction marker for `producer_id` (Kafka's
        `appendAsLeader` with origin COORDINATOR of `MemoryRecords.withEndTransactionMarker`).

        Completes the producer's open transaction in this partition, if any (a marker
        for a producer with no open transaction is still written and completes nothing).
        Raises `InvalidProducerEpoch` for an epoch older than the producer's current one.
        """
        batch = build_control_batch(
            ControlType.COMMIT if commit else ControlType.ABORT,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            coordinator_epoch=coordinator_epoch,
            timestamp=self._clock() if timestamp_ms is None else timestamp_ms,
        )
        return self.append(batch, leader_epoch=leader_epoch, validated=True,
                           origin=AppendOrigin.COORDINATOR)

    def _complete_transactions(self, seg: Segment, completed: list[CompletedTxn]) -> None:
        """Kafka's `UnifiedLog.append` tail: each completed transaction gets its last
        stable offset, an aborted one an entry in the marker segment's `.txnindex`; then
        it is closed (and drops out of the unstable range once the high watermark passes
        its marker, at once here: one replica)."""
        state = self.producer_state
        for txn in completed:
            if txn.is_aborted:
                seg.txn_index.append(AbortedTxn(
                    txn.producer_id, txn.first_offset, txn.last_offset,
                    state.last_stable_offset_of(txn)))
            state.complete_txn(txn)
        state.on_high_watermark_updated(self._high_watermark)

    # ------------------------------------------------------------------ transactions

    @property
    def first_unstable_offset(self) -> int | None:
        """Kafka's first unstable offset: the first offset of the oldest transaction that
        is open (or whose marker is not below the high watermark yet), never below the log
        start offset; None when there is none."""
        with self._lock:
            first = self.producer_state.first_unstable_offset(self._high_watermark)
            if first is None:
                return None
            return max(first, self._log_start_offset)

    @property
    def last_stable_offset(self) -> int:
        """The last stable offset (LSO): the first unstable offset, or the high watermark
        when there is none or it is not below it. read_committed consumers read below it."""
        if not self.producer_state.has_unstable:
            return self._high_watermark  # no transaction here: the common case, no lock
        with self._lock:
            first = self.first_unstable_offset
            hw = self._high_watermark
            return first if first is not None and first < hw else hw

    def ongoing_transactions(self) -> dict[int, int]:
        """producer id -> first offset of its open transaction in this partition."""
        with self._lock:
            return self.producer_state.ongoing_transactions()

    def collect_aborted_transactions(self, start_offset: int, upper_bound_offset: int
                                     ) -> list[tuple[int, int]]:
        """(producer id, first offset) of the aborted transactions overlapping
        [start_offset, upper_bound_offset), from the transaction indexes of the segment
        holding `start_offset` onwards (Kafka's `collectAbortedTransactions`)."""
        with self._lock:
            return self._collect_aborted(start_offset, upper_bound_offset)

    def _collect_aborted(self, start: int, upper: int) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for seg in self._segments[max(0, bisect.bisect_right(self._bases, start) - 1):]:
            txns, complete = seg.txn_index.collect(start, upper)
            found.extend((t.producer_id, t.first_offset) for t in txns)
            if complete:
                break
        return found

    def aborted_transactions(self) -> list[AbortedTxn]:
        """Every `.txnindex` entry of the log, oldest segment first (tools, tests)."""
        with self._lock:
            return [t for seg in self._segments for t in seg.txn_index.entries]

    @staticmethod
    def _raise_malformed(h: BatchHeader, pos: int, n: int) -> None:
        """The append's framing errors, in Kafka's order of checks."""
        if h.magic != MAGIC:
            raise InvalidRecord(f"unsupported record batch magic {h.magic}")
        if h.batch_length < _MIN_BATCH_LENGTH:
            raise InvalidRecord(f"record batch length {h.batch_length} is too small")
        raise InvalidRecord("record batch is cut short")

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"log {self.dir} is closed")

    def roll(self) -> Segment:
        """Start a new active segment at the log end offset (a no-op when the active
        segment is empty and already starts there)."""
        with self._lock:
            self._check_open()
            return self._roll(self._log_end_offset)

    def _roll(self, expected_next_offset: int) -> Segment:
        new_offset = max(expected_next_offset, self._log_end_offset)
        active = self._segments[-1]
        if new_offset == active.base_offset:
            if active.size == 0:
                return active  # Kafka deletes and recreates it; an empty segment is as good
            raise StorageError(f"segment {new_offset} already exists in {self.dir}")
        if new_offset < active.base_offset:
            raise StorageError(
                f"cannot roll to offset {new_offset} below the active segment {active.base_offset}"
            )
        active.deactivate()
        new = self._create_segment(new_offset)
        # Kafka snapshots producer state at each roll, named after the new segment.
        self.producer_state.update_map_end_offset(new_offset)
        self.producer_state.take_snapshot(sync=False)
        return new

    # ------------------------------------------------------------------ read

    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_message: bool = True,
        collect_aborted: bool = False,
        single_segment: bool = False,
    ) -> ReadInfo:
        """Whole batches starting with the one that contains `offset`.

        At most `max_bytes` bytes, except that with `min_one_message` the first batch comes
        whole even if it is larger. Batches at or past `max_offset` (e.g. the high
        watermark, or the last stable offset for read_committed) are not returned; the
        batch containing `max_offset` neither. Raises `OffsetOutOfRange` outside
        [log_start_offset, log_end_offset]; reading at the log end offset returns no
        slices. `collect_aborted` fills `aborted_transactions` with the aborted
        transactions overlapping [offset, the offset after the last batch returned), as
        a read_committed fetch needs (an empty list when nothing is returned).
        `single_segment` stops at the end of the first segment that has data (a Fetch
        sends one slice per partition, as Kafka's reads stop at a segment's end).
        """
        if max_bytes < 0:
            raise ValueError(f"invalid max_bytes {max_bytes}")
        with self._lock:
            self._check_open()
            leo = self._log_end_offset
            if offset < self._log_start_offset or offset > leo:
                raise OffsetOutOfRange(offset, self._log_start_offset, leo)
            i = bisect.bisect_right(self._bases, offset) - 1
            if i < 0:
                raise OffsetOutOfRange(offset, self._log_start_offset, leo)
            limit = leo if max_offset is None else min(max_offset, leo)
            slices: list[FileSlice] = []
            incomplete = False
            last_read: tuple[int, int] | None = None  # (segment index, end position)
            if offset < limit:
                # Where reading must stop: (segment index, position) of the batch holding
                # `limit`, or no bound when the limit is the log end.
                stop_seg = len(self._segments) - 1
                stop_pos: int | None = None
                if limit < leo:
                    stop_seg = bisect.bisect_right(self._bases, limit) - 1
                    found = self._segments[stop_seg].translate_offset(limit)
                    stop_pos = found[0] if found is not None else self._segments[stop_seg].size
                remaining = max_bytes
                cur = offset
                first = True
                while i <= stop_seg:
                    seg = self._segments[i]
                    max_pos = stop_pos if i == stop_seg else None
                    r = seg.read(cur, remaining, max_pos, min_one_message and first)
                    if r is not None:
                        if r.size == 0:
                            incomplete = first and r.first_entry_incomplete
                            break
                        slices.append(seg.slice(r.position, r.size))
                        last_read = (i, r.position + r.size)
                        remaining -= r.size
                        first = False
                        end = seg.size if max_pos is None else max_pos
                        if remaining <= 0 or r.position + r.size < end or single_segment:
                            break
                    i += 1
                    if i < len(self._segments):
                        cur = max(cur, self._bases[i])
            aborted: list[tuple[int, int]] | None = None
            if collect_aborted:
                aborted = [] if last_read is None else self._collect_aborted(
                    offset, self._offset_after(*last_read))
            return ReadInfo(
                slices, offset, self._high_watermark, self._log_start_offset, leo, incomplete,
                aborted,
            )

    def _offset_after(self, index: int, position: int) -> int:
        """The base offset of the batch at `position` of segment `index` (the offset after
        the bytes before it): the next segment's base offset or the log end offset at
        the segment's end."""
        seg = self._segments[index]
        if position < seg.size:
            for _, h in seg.iter_headers(position):
                return h.base_offset
        if index + 1 < len(self._segments):
            return self._bases[index + 1]
        return self._log_end_offset

    def read_bytes(self, offset: int, max_bytes: int, **kwargs: object) -> bytes:
        """`read` copied into one bytes object (tests, tools, the copy path)."""
        info = self.read(offset, max_bytes, **kwargs)  # type: ignore[arg-type]
        return b"".join(s.read() for s in info.slices)

    # ------------------------------------------------------------------ offsets by time

    def earliest_offset(self) -> int:
        return self._log_start_offset

    def latest_offset(self) -> int:
        return self._log_end_offset

    def max_timestamp(self) -> int:
        """The largest batch max-timestamp in the log (NO_TIMESTAMP if none)."""
        with self._lock:
            return max((s.max_timestamp_so_far() for s in self._segments), default=NO_TIMESTAMP)

    def max_timestamp_offset(self) -> TimestampAndOffset | None:
        """Offset of the first record with the log's largest timestamp (MAX_TIMESTAMP)."""
        with self._lock:
            best: Segment | None = None
            for seg in self._segments:
                if best is None or seg.max_timestamp_so_far() > best.max_timestamp_so_far():
                    best = seg
            if best is None:
                return None
            found = best.offset_of_max_timestamp()
            if found is None:
                return None
            ts, off, epoch = found
            return TimestampAndOffset(ts, off, epoch if epoch >= 0 else None)

    def offset_for_timestamp(self, timestamp: int) -> TimestampAndOffset | None:
        """Kafka's `fetchOffsetByTimestamp`: the first record whose timestamp >= the target
        (None if there is none). Sentinels: -1 latest, -2 earliest, -3 max timestamp,
        -4 earliest local (= earliest here), -5 latest tiered (offset -1: no tiering)."""
        with self._lock:
            self._check_open()
            if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
                return TimestampAndOffset(NO_TIMESTAMP, self._log_start_offset)
            if timestamp == LATEST_TIMESTAMP:
                return TimestampAndOffset(NO_TIMESTAMP, self._log_end_offset)
            if timestamp == MAX_TIMESTAMP:
                return self.max_timestamp_offset()
            if timestamp == LATEST_TIERED_TIMESTAMP:
                return TimestampAndOffset(NO_TIMESTAMP, -1, -1)
            for seg in self._segments:
                if seg.largest_timestamp() >= timestamp:
                    found = seg.find_offset_by_timestamp(timestamp, self._log_start_offset)
                    if found is None:
                        return None
                    ts, off, epoch = found
                    return TimestampAndOffset(ts, off, epoch if epoch >= 0 else None)
            return None

    # ------------------------------------------------------------------ truncation

    def truncate_to(self, target_offset: int) -> bool:
        """Remove every batch with offsets >= `target_offset` (the batch containing it goes
        whole, and the log end offset becomes that batch's base offset). Returns whether
        anything was removed (False when target >= log end offset)."""
        if target_offset < 0:
            raise ValueError(f"cannot truncate to a negative offset ({target_offset})")
        with self._lock:
            self._check_open()
            if target_offset >= self._log_end_offset:
                return False
            if self._segments[0].base_offset > target_offset:
                self._truncate_fully_and_start_at(target_offset)
                return True
            now = self._clock()
            doomed = [s for s in self._segments if s.base_offset > target_offset]
            if doomed:
                self._remove_and_delete(doomed, now)
            active = self._segments[-1]
            active.truncate_to(target_offset, now)
            if not active.is_active:
                active.activate()
            self._log_end_offset = active.read_next_offset()
            self._log_start_offset = min(self._log_start_offset, self._log_end_offset)
            self._high_watermark = min(self._high_watermark, self._log_end_offset)
            self._recovery_point = min(self._recovery_point, self._log_end_offset)
            self._rebuild_producer_state(self._log_end_offset, reload_from_clean_shutdown=False)
            return True

    def truncate_fully_and_start_at(self, new_offset: int) -> None:
        """Delete everything; the log restarts empty at `new_offset`."""
        with self._lock:
            self._check_open()
            self._truncate_fully_and_start_at(new_offset)

    def _truncate_fully_and_start_at(self, new_offset: int) -> None:
        now = self._clock()
        old = list(self._segments)
        for seg in old:
            if seg.base_offset == new_offset:
                # make room for the new segment's file names
                seg.change_file_suffixes("", DELETED_FILE_SUFFIX)
        self._remove_and_delete(old, now)
        self._create_segment(new_offset)
        self._log_end_offset = new_offset
        self._log_start_offset = new_offset
        self._high_watermark = new_offset
        self._recovery_point = new_offset
        self.producer_state.truncate_fully_and_start_at(new_offset)

    # ------------------------------------------------------------------ deletion

    def delete_records(self, offset: int) -> int:
        """Advance the log start offset to `offset` (DeleteRecords) and delete the segments
        wholly below it. Raises `OffsetOutOfRange` past the high watermark. Returns the
        (possibly unchanged) log start offset."""
        with self._lock:
            self._check_open()
            if offset > self._high_watermark:
                raise OffsetOutOfRange(
                    offset,
                    self._log_start_offset,
                    self._high_watermark,
                    f"cannot increment the log start offset to {offset} since it is larger "
                    f"than the high watermark {self._high_watermark}",
                )
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self.producer_state.on_log_start_offset_incremented(offset)
            self._delete_log_start_offset_breached_segments()
            return self._log_start_offset

    def delete_old_segments(self, now_ms: int | None = None) -> int:
        """Kafka's `deleteOldSegments` (retention): returns the number of segments deleted.

        With `cleanup.policy` containing delete: log-start-offset, `retention.bytes` and
        `retention.ms` breaches; otherwise only log-start-offset breaches.
        """
        with self._lock:
            self._check_open()
            now = self._clock() if now_ms is None else now_ms
            if self.config.delete:
                return (
                    self._delete_log_start_offset_breached_segments()
                    + self._delete_retention_size_breached_segments()
                    + self._delete_retention_ms_breached_segments(now)
                )
            return self._delete_log_start_offset_breached_segments()

    def _delete_retention_ms_breached_segments(self, now: int) -> int:
        retention_ms = self.config.retention_ms
        if retention_ms < 0:
            return 0
        return self._delete_old_segments(
            lambda seg, nxt: now - seg.largest_timestamp() > retention_ms
        )

    def _delete_retention_size_breached_segments(self) -> int:
        retention_size = self.config.retention_bytes
        log_size = sum(s.size for s in self._segments)
        if retention_size < 0 or log_size < retention_size:
            return 0
        diff = [log_size - retention_size]

        def should_delete(seg: Segment, nxt: Segment | None) -> bool:
            if diff[0] - seg.size >= 0:
                diff[0] -= seg.size
                return True
            return False

        return self._delete_old_segments(should_delete)

    def _delete_log_start_offset_breached_segments(self) -> int:
        start = self._log_start_offset
        return self._delete_old_segments(
            lambda seg, nxt: nxt is not None and nxt.base_offset <= start
        )

    def _delete_old_segments(self, predicate: Callable[[Segment, Segment | None], bool]) -> int:
        deletable: list[Segment] = []
        segs = self._segments
        for i, seg in enumerate(segs):
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            is_last_and_empty = nxt is None and seg.size == 0
            upper = nxt.base_offset if nxt is not None else self._log_end_offset
            if self._high_watermark >= upper and predicate(seg, nxt) and not is_last_and_empty:
                deletable.append(seg)
            else:
                break
        if not deletable:
            return 0
        count = len(deletable)
        if count == len(segs):
            # always keep a segment: roll first, and keep the new one
            new = self._roll(self._log_end_offset)
            if deletable[-1] is new:
                deletable.pop()
        if deletable:
            idx = self._segments.index(deletable[-1])
            new_start = self._segments[idx + 1].base_offset
            if new_start > self._log_start_offset:
                self._log_start_offset = new_start
                self.producer_state.on_log_start_offset_incremented(new_start)
            self._remove_and_delete(deletable, self._clock())
        return count

    def _remove_and_delete(self, doomed: Iterable[Segment], now_ms: int) -> None:
        """Take segments out of the log, rename their files `*.deleted`, and unlink them
        now or, with `file.delete.delay.ms` > 0, in `delete_pending_files`."""
        doomed = list(doomed)
        ids = {id(s) for s in doomed}
        keep = [s for s in self._segments if id(s) not in ids]
        self._segments = keep
        self._bases = [s.base_offset for s in keep]
        for seg in doomed:  # their producer snapshots go too (not one a segment still uses)
            if seg.base_offset not in self._bases:
                self.producer_state.delete_snapshot(seg.base_offset)
        delay = self.config.file_delete_delay_ms
        for seg in doomed:
            seg.release_handles()
            if not seg.log_path.endswith(DELETED_FILE_SUFFIX):
                seg.change_file_suffixes("", DELETED_FILE_SUFFIX)
            if delay <= 0:
                seg.delete_files()
            else:
                self._pending_deletes.append((now_ms + delay, seg))

    def delete_pending_files(self, now_ms: int | None = None) -> int:
        """Unlink `*.deleted` segment files whose `file.delete.delay.ms` has passed."""
        with self._lock:
            now = self._clock() if now_ms is None else now_ms
            due = [s for t, s in self._pending_deletes if t <= now]
            self._pending_deletes = [(t, s) for t, s in self._pending_deletes if t > now]
            for seg in due:
                seg.delete_files()
            return len(due)

    # ------------------------------------------------------------------ compaction support

    @property
    def lock(self) -> threading.RLock:
        """The log's lock: the log cleaner holds it to snapshot segments and to swap."""
        return self._lock

    @property
    def closed(self) -> bool:
        return self._closed

    def flush_due(self) -> bool:
        """Whether `flush.messages` messages are unflushed (the check `append` makes
        itself unless `inline_flush` is False)."""
        return self._log_end_offset - self._recovery_point >= self._flush_messages

    def replace_segments(self, new: Segment, old: list[Segment], old_sizes: list[int]) -> bool:
        """Swap `new` (a cleaned segment: files `*.cleaned`, fsync'd, base offset = old[0]'s)
        in for the consecutive inactive segments `old`, as Kafka's `replaceSegments`:
        rename `new` to `*.swap`, take `old` out and rename them `*.deleted` (unlinked now
        or after `file.delete.delay.ms`), drop the `.swap` suffix, fsync the directory.
        A crash anywhere in between is finished or rolled back at the next open
        (`recover_interrupted_swaps`). Returns False and changes nothing when `old` is no
        longer what the log holds (retention, truncation, deletion or a close meanwhile)."""
        with self._lock:
            if self._closed or not old:
                return False
            segs = self._segments
            i = next((k for k, s in enumerate(segs) if s is old[0]), -1)
            if i < 0 or i + len(old) >= len(segs) or new.base_offset != old[0].base_offset:
                return False
            for s, o, size in zip(segs[i : i + len(old)], old, old_sizes, strict=True):
                if s is not o or s.is_active or s.size != size:
                    return False
            new.change_file_suffixes(CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX)
            new.config = self.config
            new.on_corrupt_index = self._note_corrupt_index
            new.owner_lock = self._lock
            self._segments = segs[:i] + [new] + segs[i + len(old) :]
            self._bases = [s.base_offset for s in self._segments]
            self._remove_and_delete(old, self._clock())
            new.change_file_suffixes(SWAP_FILE_SUFFIX, "")
            fsync_dir(self.dir)
            return True

    # ------------------------------------------------------------------ durability

    def flush(self, up_to: int | None = None) -> None:
        """fsync every segment holding offsets below `up_to` (default: the log end
        offset) that is not yet durable, then advance the recovery point to it.

        Blocking; safe to run in a worker thread while the log is appended to: the lock
        is held only to pick the files, which are fsync'd through descriptors of their
        own (so the handle cache is never touched from another thread). Pages written
        through the active segment's map are file pages, so `fsync` covers them.
        """
        with self._lock:
            target = self._log_end_offset if up_to is None else min(up_to, self._log_end_offset)
            if target <= self._recovery_point:
                return
            start = max(0, bisect.bisect_right(self._bases, self._recovery_point) - 1)
            paths = [
                path
                for seg in self._segments[start:]
                if seg.base_offset < target
                for path in (seg.log_path, seg.index_path, seg.time_index_path,
                             seg.txn_index.path)
            ]
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # deleted or renamed meanwhile
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(self.dir)
        with self._lock:
            if target > self._recovery_point:
                self._recovery_point = target
            self._last_flush_ms = self._clock()

    def close(self, flush: bool = True) -> None:
        """Flush (by default), then trim and close every segment. Pending `*.deleted`
        files are removed. The log cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            if flush:
                self.flush()
                self.producer_state.take_snapshot()  # so the next open scans nothing
            for seg in self._segments:
                seg.close()
            for _, seg in self._pending_deletes:
                seg.delete_files()
            self._pending_deletes.clear()
            self._closed = True

    def release_handles(self) -> None:
        """Drop every open handle (maps, descriptors); they reopen on demand."""
        with self._lock:
            for seg in self._segments:
                seg.release_handles()

    def delete(self) -> None:
        """Remove every segment file and the directory (the log is closed)."""
        with self._lock:
            for seg in self._segments:
                seg.close()
                seg.delete_files()
            for _, seg in self._pending_deletes:
                seg.delete_files()
            self._segments.clear()
            self._bases.clear()
            self._pending_deletes.clear()
            self._closed = True
            _rmtree(self.dir)

    # ------------------------------------------------------------------ producer state

    def remove_expired_producers(self, now_ms: int | None = None,
                                 expiration_ms: int | None = None) -> int:
        """Drop producers idle for `producer.id.expiration.ms` (`expiration_ms` if given)."""
        with self._lock:
            now = self._clock() if now_ms is None else now_ms
            return self.producer_state.remove_expired_producers(now, expiration_ms)

    def take_producer_snapshot(self) -> str | None:
        """Snapshot the producer state at the log end offset (none if one is there)."""
        with self._lock:
            self._check_open()
            return self.producer_state.take_snapshot()

    def _check_producers(
        self,
        mv: memoryview,
        parsed: list[tuple[int, BatchHeader]],
        first: int,
        log_append_time: int | None,
        origin: AppendOrigin,
    ) -> ProducerAppend | BatchMetadata | None:
        """Kafka's `analyzeAndValidateProducerState`: the pending producer updates of an
        append, or the retained batch it duplicates. Raises before anything is written."""
        if origin is AppendOrigin.REPLICATION:
            return None
        state = self.producer_state
        pending: ProducerAppend | None = None
        offset = first
        for pos, h in parsed:
            base = offset
            offset += h.last_offset_delta + 1
            if h.producer_id < 0:
                continue
            if origin is AppendOrigin.CLIENT and not h.is_control:
                duplicate = state.find_duplicate(
                    h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence)
                if duplicate is not None:
                    return duplicate
            if pending is None:
                pending = state.prepare(origin)
            pending.append(_data_batch(mv, pos, h, base, log_append_time))
        return pending

    def _rebuild_producer_state(self, last_offset: int, *, reload_from_clean_shutdown: bool
                                ) -> None:
        """Kafka's `UnifiedLog.rebuildProducerState`: restore the newest snapshot not past
        `last_offset` and replay the batches between it and `last_offset`."""
        state = self.producer_state
        to_snapshot = {last_offset, *self._bases[-2:]}
        if state.latest_snapshot_offset() is None and reload_from_clean_shutdown:
            # A clean shutdown without snapshots (a data dir from before snapshots):
            # empty snapshots instead of a scan, as Kafka does.
            for offset in sorted(to_snapshot):
                state.update_map_end_offset(offset)
                state.take_snapshot()
            return
        was_empty = state.is_empty and state.map_end_offset >= last_offset
        state.truncate_and_reload(self._log_start_offset, last_offset, self._clock())
        if last_offset > state.map_end_offset and not was_empty:
            first = max(0, bisect.bisect_right(self._bases, state.map_end_offset) - 1)
            for i in range(first, len(self._segments)):
                seg = self._segments[i]
                if seg.base_offset >= last_offset:
                    break
                start = max(seg.base_offset, state.map_end_offset, self._log_start_offset)
                state.update_map_end_offset(start)
                if seg.base_offset in to_snapshot:
                    state.take_snapshot()
                seg_end = self._bases[i + 1] if i + 1 < len(self._bases) else None
                self._replay_producers(seg, start, last_offset, seg_end)
        state.update_map_end_offset(last_offset)
        state.take_snapshot()
        state.on_high_watermark_updated(self._high_watermark)

    def _replay_producers(self, seg: Segment, start: int, last_offset: int,
                          next_base: int | None) -> None:
        """Apply the producer fields of `seg`'s batches in [start, last_offset)."""
        found = seg.translate_offset(start)
        if found is None:
            return
        end_pos: int | None = None
        if next_base is None or last_offset < next_base:
            stop = seg.translate_offset(last_offset)
            end_pos = stop[0] if stop is not None else None
        pending = self.producer_state.prepare(AppendOrigin.REPLICATION)
        for pos, h in seg.iter_headers(found[0], end_pos):
            if h.producer_id < 0:
                continue
            data = seg.read_bytes(pos, h.size) if h.is_control else None
            pending.append(_data_batch(data, 0, h, h.base_offset, None))
        for txn in pending.commit():
            self.producer_state.complete_txn(txn)

    def update_config(self, config: LogConfig) -> None:
        """Apply new topic configs (takes effect for subsequent appends/rolls/retention)."""
        with self._lock:
            self.config = config
            self._cache_config(config)
            for seg in self._segments:
                seg.config = config

    def _cache_config(self, config: LogConfig) -> None:
        # derived values read on every append
        self._max_message_bytes = config.max_message_bytes
        self._config_log_append_time = config.log_append_time
        self._max_segment_ms = config.max_segment_ms
        self._segment_size = config.segment_size
        self._flush_messages = config.flush_messages

    def __repr__(self) -> str:
        return (
            f"PartitionLog(dir={self.dir!r}, log_start_offset={self._log_start_offset}, "
            f"log_end_offset={self._log_end_offset}, high_watermark={self._high_watermark}, "
            f"segments={len(self._segments)})"
        )


def _data_batch(buf: memoryview | bytes | None, pos: int, h: BatchHeader, base_offset: int,
                log_append_time: int | None) -> DataBatch:
    """The producer fields of the batch at `pos` once it sits at `base_offset`; for a
    transaction marker, its type and coordinator epoch (read from its control record)."""
    marker: tuple[bool, int] | None = None
    if h.is_control and buf is not None:
        try:
            for record in iter_records(buf, pos, h):
                control_type, coordinator_epoch = parse_control_record(record)
                marker = (control_type == ControlType.COMMIT, coordinator_epoch)
                break
        except ProtocolError:
            marker = None
    return DataBatch(
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        last_sequence=h.last_sequence,
        first_offset=base_offset,
        last_offset=base_offset + h.last_offset_delta,
        max_timestamp=h.max_timestamp if log_append_time is None else log_append_time,
        is_transactional=h.is_transactional,
        is_control=h.is_control,
        marker=marker,
    )


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
