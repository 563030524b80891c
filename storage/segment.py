"""One log segment: `<base>.log` plus its `.index` and `.timeindex`, in Kafka's format.

How this works
--------------
A segment holds the batches whose offsets start at its base offset (20-digit zero-padded
file names, as Kafka's `LogFileUtils`). Only the last segment of a partition is *active*:

* The active `.log` file is extended (sparse `ftruncate`, plus `posix_fallocate` when
  `preallocate=true`) to `segment.bytes` and mapped read-only for header scans. An append
  is one `pwritev` at the end position: per batch, its first 16 bytes with baseOffset and
  partitionLeaderEpoch patched (the CRC does not cover them), then the rest straight from
  the request's buffer - the bytes are never re-encoded. `size` is the real end of data;
  everything after it is zeros. (Writing through the map instead costs a page fault and
  the zeroing of a fresh page-cache page per 4 KiB before the copy, and keeps every
  written page in the broker's RSS; `pwrite` fills whole pages without zeroing them and
  maps nothing: measured in `bench/hotpath_bench.py`.)
* On roll (`deactivate`) or close the map is dropped and the file is trimmed to `size`;
  the indexes are trimmed to their entries (Kafka's `onBecomeInactiveSegment`).
* Inactive segments are read through `FileSlice`s of an ordinary file object; their
  batch headers through a read-only map of the data made on first use (`os.pread` if
  that fails); their indexes are mapped only when used. Nothing shrinks a mapped file:
  truncation and recovery drop the maps first. After reads spanning `_UNMAP_READ_SPAN`
  bytes the pages header scans mapped are unmapped again (they stay cached), so reading
  a segment through does not add the segment to the broker's RSS.

Index entries follow `LogSegment.append`: when more than `index.interval.bytes` were
appended since the last entry, the append gets an offset-index entry (its largest offset ->
its start position) and a time-index entry (max timestamp so far -> its offset).

Handles (file object, log map, index maps) are opened lazily and can be dropped at any
time with `release_handles()`; a shared `HandleCache` does that for the least recently
used segments so thousands of partitions do not exhaust descriptors or address space.

`recover()` rescans the whole file: every batch must have a sane length, magic 2, a good
CRC, offsets that fit the index and increase; the first one that does not, and everything
after it, is cut off (`ftruncate`), and both indexes are rebuilt. A preallocated tail of
zeros fails the length check, so it is recognised as the end of the log.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from crc32c import crc32c

from protocol.errors import ProtocolError
from protocol.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    TimestampType,
    batch_crc_ok,
    iter_records,
    read_batch_header,
)
from storage.config import LogConfig
from storage.errors import CorruptIndex, IndexOffsetOverflow
from storage.index import NO_TIMESTAMP, OffsetIndex, TimeIndex, TimestampOffset
from storage.slices import FileSlice
from storage.txn_index import TransactionIndex

__all__ = [
    "CLEANED_FILE_SUFFIX",
    "DELETED_FILE_SUFFIX",
    "INDEX_FILE_SUFFIX",
    "LOG_FILE_SUFFIX",
    "SWAP_FILE_SUFFIX",
    "TIME_INDEX_FILE_SUFFIX",
    "TXN_INDEX_FILE_SUFFIX",
    "HandleCache",
    "Segment",
    "filename_prefix_from_offset",
    "offset_from_file_name",
    "recover_interrupted_swaps",
]

LOG_FILE_SUFFIX = ".log"
INDEX_FILE_SUFFIX = ".index"
TIME_INDEX_FILE_SUFFIX = ".timeindex"
TXN_INDEX_FILE_SUFFIX = ".txnindex"
DELETED_FILE_SUFFIX = ".deleted"
CLEANED_FILE_SUFFIX = ".cleaned"
SWAP_FILE_SUFFIX = ".swap"

_MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD
#: baseOffset (@0), batchLength (@8) and lastOffsetDelta (@23) of a v2 batch header: all a
#: forward scan needs (see protocol/records.py for the full layout).
_SCAN_FIELDS = struct.Struct(">qi11xi")
#: baseOffset, batchLength, partitionLeaderEpoch: the first 16 bytes of a batch, which an
#: append rewrites (outside the CRC).
_patch = struct.Struct(">qii")
_PATCH_SIZE = _patch.size
_pack_patch = _patch.pack_into
_pack_attributes = struct.Struct(">h").pack_into
_pack_max_timestamp = struct.Struct(">q").pack_into
_pack_crc = struct.Struct(">I").pack_into
_CRC_AT = 17
_ATTRIBUTES_AT = 21
_MAX_TIMESTAMP_AT = 35
_TIMESTAMP_TYPE_MASK = 0x08
_new_tuple = tuple.__new__
#: `Segment.read` consults the offset index for where to stop only when the range to walk
#: spans more than this many batches the size of the first one.
_INDEX_SKIP_BATCHES = 16
_INT32_MAX = 2**31 - 1
_PAGE = mmap.PAGESIZE
#: Bytes read per `pread` when walking batch headers of an unmapped segment.
_SCAN_CHUNK = 64 * 1024
#: At most this many buffers per `pwritev` (Linux's IOV_MAX).
_IOV_MAX = 1024
#: After reads spanning this many bytes of a segment, the pages its header scans mapped
#: are unmapped again (`Segment._drop_mapped_pages`).
_UNMAP_READ_SPAN = 32 << 20
_MADV_DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)


def filename_prefix_from_offset(offset: int) -> str:
    """Kafka's `filenamePrefixFromOffset`: the offset zero-padded to 20 digits."""
    return f"{offset:020d}"


def offset_from_file_name(name: str) -> int:
    return int(name[: name.index(".")])


class SegmentRead(NamedTuple):
    """What `Segment.read` found: whole batches [position, position+size)."""

    position: int
    size: int
    first_offset: int  # base offset of the first batch (<= the requested offset)
    first_batch_size: int
    first_entry_incomplete: bool  # the first batch is larger than max_size allowed


class HandleCache:
    """LRU of segments holding open handles; evicts (releases) beyond `capacity`.

    Thread-safe: logs are used from the trio thread and from worker threads (retention,
    the log cleaner), each under its own log's lock. A victim is released only while
    holding its owner's lock (`Segment.owner_lock`, taken without blocking), so a thread
    never loses a map it is using in another log; a victim whose log is busy is skipped
    and stays cached until a later eviction."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._lru: OrderedDict[int, Segment] = OrderedDict()
        self._mru: Segment | None = None
        self._lock = threading.Lock()

    def touch(self, segment: Segment) -> None:
        if segment is self._mru:
            return
        with self._lock:
            self._mru = segment
            key = id(segment)
            lru = self._lru
            if key in lru:
                lru.move_to_end(key)
                return
            lru[key] = segment
            if len(lru) > self.capacity:
                self._evict(segment)

    def _evict(self, keep: Segment) -> None:
        lru = self._lru
        busy: list[Segment] = []
        while len(lru) > self.capacity:
            _, victim = lru.popitem(last=False)
            if victim is keep:  # only `keep` and busy segments left
                lru[id(keep)] = keep
                break
            lock = victim.owner_lock
            if lock is None:
                victim.release_handles(from_cache=True)
            elif lock.acquire(blocking=False):
                try:
                    victim.release_handles(from_cache=True)
                finally:
                    lock.release()
            else:
                busy.append(victim)
        for seg in reversed(busy):  # still open: first in line for the next eviction
            lru[id(seg)] = seg
            lru.move_to_end(id(seg), last=False)

    def forget(self, segment: Segment) -> None:
        with self._lock:
            self._lru.pop(id(segment), None)
            if self._mru is segment:
                self._mru = None

    def __len__(self) -> int:
        return len(self._lru)


class Segment:
    """A log segment. Not thread-safe: `PartitionLog` serialises access."""

    def __init__(
        self,
        dir: str | os.PathLike[str],
        base_offset: int,
        config: LogConfig,
        *,
        now_ms: int,
        roll_jitter_ms: int = 0,
        handle_cache: HandleCache | None = None,
        suffix: str = "",
    ) -> None:
        """Describe the segment; opens nothing. Use `create` or `open_existing`."""
        self.dir = os.fspath(dir)
        self.base_offset = base_offset
        self.config = config
        self.roll_jitter_ms = roll_jitter_ms
        self._suffix = suffix
        prefix = os.path.join(self.dir, filename_prefix_from_offset(base_offset))
        self.log_path = prefix + LOG_FILE_SUFFIX + suffix
        self.index_path = prefix + INDEX_FILE_SUFFIX + suffix
        self.time_index_path = prefix + TIME_INDEX_FILE_SUFFIX + suffix
        #: Aborted transactions whose ABORT marker is in this segment (`.txnindex`).
        self.txn_index = TransactionIndex(prefix + TXN_INDEX_FILE_SUFFIX + suffix, base_offset)
        self._cache = handle_cache
        self._size = 0
        self._active = False
        self._file: io.FileIO | None = None
        self._mm: mmap.mmap | None = None  # the active segment's map (reads only)
        self._rmm: mmap.mmap | None = None  # an inactive segment's read-only map (headers)
        self._capacity = 0  # file size while mapped
        self._read_span = 0  # bytes covered by reads since the maps' pages were dropped
        self._offset_index: OffsetIndex | None = None
        self._time_index: TimeIndex | None = None
        self._indexes_checked = False
        self._max_ts: TimestampOffset | None = None  # None = unknown (Kafka's UNKNOWN)
        self._rolling_based_timestamp: int | None = None
        self._rolling_ts_loaded = False
        self._created_ms = now_ms
        self._bytes_since_last_index_entry = 0
        self._next_offset: int | None = None
        self._flushed_size = 0
        self.on_corrupt_index: Callable[[Segment, CorruptIndex], None] | None = None
        #: The owning log's lock; `HandleCache` takes it before releasing our handles.
        self.owner_lock: threading.RLock | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        dir: str | os.PathLike[str],
        base_offset: int,
        config: LogConfig,
        *,
        now_ms: int,
        roll_jitter_ms: int = 0,
        handle_cache: HandleCache | None = None,
    ) -> Segment:
        """A new, empty, active segment (existing files of that name are replaced)."""
        seg = cls(
            dir,
            base_offset,
            config,
            now_ms=now_ms,
            roll_jitter_ms=roll_jitter_ms,
            handle_cache=handle_cache,
        )
        for path in (seg.log_path, seg.index_path, seg.time_index_path, seg.txn_index.path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        fd = os.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        seg._next_offset = base_offset
        seg._max_ts = TimestampOffset(NO_TIMESTAMP, base_offset)
        seg._indexes_checked = True
        seg._rolling_ts_loaded = True
        seg.activate()
        return seg

    @classmethod
    def open_existing(
        cls,
        dir: str | os.PathLike[str],
        base_offset: int,
        config: LogConfig,
        *,
        now_ms: int,
        roll_jitter_ms: int = 0,
        handle_cache: HandleCache | None = None,
        suffix: str = "",
    ) -> Segment:
        """An inactive segment over existing files; its size is the file's size.
        `suffix` opens `<base>.log<suffix>` etc. (e.g. a cleaned segment before its swap)."""
        seg = cls(
            dir,
            base_offset,
            config,
            now_ms=now_ms,
            roll_jitter_ms=roll_jitter_ms,
            handle_cache=handle_cache,
            suffix=suffix,
        )
        st = os.stat(seg.log_path)
        seg._size = st.st_size
        seg._flushed_size = st.st_size
        return seg

    # -- properties -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes of data in the segment."""
        return self._size

    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def created_ms(self) -> int:
        return self._created_ms

    def has_index_files(self) -> bool:
        return os.path.exists(self.index_path) and os.path.exists(self.time_index_path)

    def __repr__(self) -> str:
        return f"Segment(base_offset={self.base_offset}, size={self._size}, active={self._active})"

    # -- handles ----------------------------------------------------------------------

    def _touch(self) -> None:
        if self._cache is not None:
            self._cache.touch(self)

    def file(self) -> io.FileIO:
        """The segment's `.log` file object (opened on demand)."""
        f = self._file
        if f is None or f.closed:
            f = self._file = io.FileIO(self.log_path, "r+")
        self._touch()
        return f

    def offset_index(self) -> OffsetIndex:
        idx = self._offset_index
        if idx is None:
            idx = self._offset_index = OffsetIndex(
                self.index_path, self.base_offset, self.config.segment_index_bytes
            )
            if self._active:
                idx.resize(self.config.segment_index_bytes)
            self._check_indexes_once()
            idx = self._offset_index
            assert idx is not None
        self._touch()
        return idx

    def time_index(self) -> TimeIndex:
        idx = self._time_index
        if idx is None:
            idx = self._time_index = TimeIndex(
                self.time_index_path, self.base_offset, self.config.segment_index_bytes
            )
            if self._active:
                idx.resize(self.config.segment_index_bytes)
            self._check_indexes_once()
            idx = self._time_index
            assert idx is not None
        self._touch()
        return idx

    def _check_indexes_once(self) -> None:
        """First time an inactive segment's indexes are opened: sanity-check them, and
        rebuild them from the log if they fail (Kafka's CorruptIndexException path)."""
        if self._indexes_checked:
            return
        self._indexes_checked = True
        try:
            self.sanity_check()
        except CorruptIndex as e:
            if self.on_corrupt_index is not None:
                self.on_corrupt_index(self, e)
            self.recover()

    def sanity_check(self) -> None:
        """Kafka's index sanity checks plus a cross-check with the log: the batch at the
        last offset-index position must start at or below the indexed offset and end at
        or below it (an entry maps an append's largest offset to its first batch).
        Raises `CorruptIndex`."""
        self._indexes_checked = True
        oi = self.offset_index()
        ti = self.time_index()
        oi.sanity_check(self._size)
        if oi.entries:
            last = oi.entry(oi.entries - 1)
            header = self._header_at(last.position)
            if (
                header is None
                or header.batch_length < _MIN_BATCH_LENGTH
                or header.base_offset > last.offset
                or header.base_offset + header.last_offset_delta > last.offset
            ):
                raise CorruptIndex(f"index {oi.path} entry {last} does not match the log")
        ti.sanity_check(self.read_next_offset())

    def _ensure_map(self) -> mmap.mmap:
        mm = self._mm
        if mm is None:
            f = self.file()
            capacity = max(self.config.segment_size, self._size)
            capacity = -(-capacity // _PAGE) * _PAGE
            fd = f.fileno()
            if os.fstat(fd).st_size != capacity:
                os.ftruncate(fd, capacity)
                if self.config.preallocate and capacity > self._size:
                    try:
                        os.posix_fallocate(fd, self._size, capacity - self._size)
                    except OSError:
                        pass
            mm = self._mm = mmap.mmap(fd, capacity, access=mmap.ACCESS_READ)
            self._capacity = capacity
        self._touch()
        return mm

    def _grow_map(self, needed: int) -> mmap.mmap:
        """Make room for an append larger than what is left of the map (a single append
        bigger than `segment.bytes`, which Kafka also allows into a fresh segment)."""
        self._unmap_and_trim()
        f = self.file()
        capacity = -(-needed // _PAGE) * _PAGE
        os.ftruncate(f.fileno(), capacity)
        self._mm = mmap.mmap(f.fileno(), capacity, access=mmap.ACCESS_READ)
        self._capacity = capacity
        return self._mm

    def _write(self, buffers: Sequence[bytes | bytearray | memoryview], pos: int, n: int
               ) -> None:
        """Write `buffers` (`n` bytes in all) at `pos` of the `.log` with `pwritev`: the one
        copy of an append, from the request's buffer into the page cache. A short write
        (possible, but not seen on local file systems) is finished with `pwrite`; an error
        (ENOSPC, EIO) propagates before `size` moves, so the bytes past it are ignored and
        overwritten by the next append (or cut off by recovery)."""
        f = self._file
        assert f is not None  # the map is open, so is the file
        fd = f.fileno()
        if len(buffers) > _IOV_MAX:
            for i in range(0, len(buffers), _IOV_MAX):
                group = buffers[i : i + _IOV_MAX]
                size = sum(len(b) for b in group)
                self._write(group, pos, size)
                pos += size
            return
        written = os.pwritev(fd, buffers, pos)
        if written != n:
            rest = memoryview(b"".join(buffers))[written:]
            pos += written
            while rest:
                done = os.pwrite(fd, rest, pos)
                if done <= 0:
                    raise OSError(f"short write to {self.log_path}")
                rest = rest[done:]
                pos += done

    def _unmap_and_trim(self) -> None:
        self._drop_read_map()
        if self._mm is not None:
            self._mm.close()
            self._mm = None
            self._capacity = 0
        if self._file is not None and not self._file.closed:
            fd = self._file.fileno()
            if os.fstat(fd).st_size != self._size:
                os.ftruncate(fd, self._size)

    def release_handles(self, from_cache: bool = False) -> None:
        """Drop the log map and index maps (trimming them to their real size) and storage's
        reference to the file object. In-flight `FileSlice`s keep the file open."""
        self._unmap_and_trim()
        if self._offset_index is not None:
            self._offset_index.close()
            self._offset_index = None
        if self._time_index is not None:
            self._time_index.close()
            self._time_index = None
        self._file = None
        if not from_cache and self._cache is not None:
            self._cache.forget(self)

    # -- active/inactive --------------------------------------------------------------

    def activate(self) -> None:
        """Become the segment appends go to: map the log, grow indexes to full size."""
        self._active = True
        self._drop_read_map()
        if self._offset_index is not None:
            self._offset_index.resize(self.config.segment_index_bytes)
        if self._time_index is not None:
            self._time_index.resize(self.config.segment_index_bytes)
        self._ensure_map()

    def deactivate(self) -> None:
        """Kafka's `onBecomeInactiveSegment`: append the final time-index entry, trim the
        indexes and the log file to their real sizes, unmap."""
        max_ts = self.read_max_timestamp_and_offset_so_far()
        ti = self.time_index()
        ti.maybe_append(max_ts.timestamp, max_ts.offset, skip_full_check=True)
        self.offset_index().trim_to_valid_size()
        ti.trim_to_valid_size()
        self._active = False
        self._unmap_and_trim()

    # -- reading batch headers --------------------------------------------------------

    def _view(self) -> mmap.mmap | None:
        """The map to read batch headers from: the active segment's map, or for an
        inactive segment a read-only map of its data, made on first use and dropped with
        the other handles (so the handle cache bounds them too). Header scans on it cost
        what they cost on the active segment; `pread` of a 64 KiB chunk per lookup cost
        more. None (callers fall back to `pread`) for an active segment whose map was
        released, an empty segment, or a map the OS refused.

        Safe because nothing shrinks an inactive segment's file under a map: `truncate_to`
        and `recover` drop it first (`_unmap_and_trim_to_file`)."""
        mm = self._mm
        if mm is not None or self._active:
            return mm
        mm = self._rmm
        if mm is None or len(mm) != self._size:
            self._drop_read_map()
            if self._size <= 0:
                return None
            try:
                mm = mmap.mmap(self.file().fileno(), self._size, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None
            self._rmm = mm
        return mm

    def _drop_read_map(self) -> None:
        if self._rmm is not None:
            self._rmm.close()
            self._rmm = None

    def _header_at(self, pos: int) -> BatchHeader | None:
        """The header of the batch at `pos` if a whole header lies inside the data."""
        if pos + BATCH_HEADER_SIZE > self._size or pos < 0:
            return None
        mm = self._view()
        if mm is not None:
            return read_batch_header(mm, pos)
        data = os.pread(self.file().fileno(), BATCH_HEADER_SIZE, pos)
        if len(data) < BATCH_HEADER_SIZE:
            return None
        return read_batch_header(data)

    def iter_headers(
        self, start: int = 0, end: int | None = None
    ) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each whole batch in [start, end), trusting lengths."""
        end = self._size if end is None else min(end, self._size)
        pos = start
        mm = self._view()
        if mm is not None:
            while pos + BATCH_HEADER_SIZE <= end:
                h = read_batch_header(mm, pos)
                size = h.batch_length + LOG_OVERHEAD
                if h.batch_length < _MIN_BATCH_LENGTH or pos + size > end:
                    return
                yield pos, h
                pos += size
            return
        fd = self.file().fileno()
        buf = b""
        buf_pos = pos
        while pos + BATCH_HEADER_SIZE <= end:
            rel = pos - buf_pos
            if rel < 0 or rel + BATCH_HEADER_SIZE > len(buf):
                buf = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
                buf_pos, rel = pos, 0
                if len(buf) < BATCH_HEADER_SIZE:
                    return
            h = read_batch_header(buf, rel)
            size = h.batch_length + LOG_OVERHEAD
            if h.batch_length < _MIN_BATCH_LENGTH or pos + size > end:
                return
            yield pos, h
            pos += size

    def read_bytes(self, position: int, length: int) -> bytes:
        """A copy of `length` bytes at `position` (for record-level scans)."""
        length = max(0, min(length, self._size - position))
        mm = self._view()
        if mm is not None:
            return mm[position : position + length]
        return os.pread(self.file().fileno(), length, position)

    def translate_offset(
        self, offset: int, starting_position: int = 0
    ) -> tuple[int, BatchHeader] | None:
        """Kafka's `translateOffset`: the first batch whose last offset >= `offset`,
        found from the offset index entry at or below it plus a short forward scan."""
        mapping = self.offset_index().lookup(offset)
        pos = self._scan_for_offset(offset, max(mapping.position, starting_position))
        if pos < 0:
            return None
        h = self._header_at(pos)
        assert h is not None
        return pos, h

    def _scan_for_offset(self, offset: int, pos: int) -> int:
        """Position of the first batch from `pos` whose last offset >= `offset`, or -1.

        The hot part of every read: it walks batch headers reading only baseOffset,
        batchLength and lastOffsetDelta (`_SCAN_FIELDS`) instead of whole headers."""
        end = self._size
        unpack = _SCAN_FIELDS.unpack_from
        mm = self._view()
        if mm is not None:
            while pos + BATCH_HEADER_SIZE <= end:
                base, length, delta = unpack(mm, pos)
                if length < _MIN_BATCH_LENGTH or pos + length + LOG_OVERHEAD > end:
                    return -1
                if base + delta >= offset:
                    return pos
                pos += length + LOG_OVERHEAD
            return -1
        fd = self.file().fileno()
        buf = b""
        buf_pos = pos
        while pos + BATCH_HEADER_SIZE <= end:
            rel = pos - buf_pos
            if rel + BATCH_HEADER_SIZE > len(buf):
                buf = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
                buf_pos, rel = pos, 0
                if len(buf) < BATCH_HEADER_SIZE:
                    return -1
            base, length, delta = unpack(buf, rel)
            if length < _MIN_BATCH_LENGTH or pos + length + LOG_OVERHEAD > end:
                return -1
            if base + delta >= offset:
                return pos
            pos += length + LOG_OVERHEAD
        return -1

    # -- append -----------------------------------------------------------------------

    def append(
        self,
        data: memoryview,
        batches: list[tuple[int, BatchHeader]],
        first_offset: int,
        last_offset: int,
        *,
        leader_epoch: int,
        log_append_time: int | None,
    ) -> tuple[int, int, int]:
        """Copy `data` (whole batches; `batches` = their (position, header) within it) to
        the end of the map, then assign offsets from `first_offset` and the leader epoch in
        place (and LogAppendTime, which rewrites the CRC).

        `last_offset` is the offset the last record will get.
        Returns (physical position, max timestamp, offset of max timestamp) of the append.
        """
        if not 0 <= last_offset - self.base_offset <= _INT32_MAX:
            raise IndexOffsetOverflow(
                f"offset {last_offset} does not fit segment {self.base_offset}'s index"
            )
        physical = self._size
        max_ts, max_ts_offset = self.append_batches(
            data, len(data), batches, first_offset, leader_epoch, log_append_time
        )
        return physical, max_ts, max_ts_offset

    def append_one(
        self,
        data: memoryview,
        n: int,
        first_offset: int,
        last_offset: int,
        max_timestamp: int,
        leader_epoch: int,
        max_segment_bytes: int,
        max_segment_ms: int,
        clock: Callable[[], int],
    ) -> bool:
        """The hot path of `PartitionLog.append`: one checked batch of `n` bytes with
        CreateTime and no LogAppendTime stamping, getting offsets [first, last]. Returns
        False, writing nothing, when `should_roll_fast` says the segment must roll first;
        else does what `append` does (one copy, baseOffset/leader epoch patched in place,
        timestamps and index entries) in one call."""
        physical = self._size
        # -- should_roll_fast, inline
        if physical > max_segment_bytes - n:
            return False
        if physical > 0:
            if not self._rolling_ts_loaded:
                self._load_first_batch_timestamp()
            rts = self._rolling_based_timestamp
            if rts is not None and rts >= 0:
                if max_timestamp - rts > max_segment_ms - self.roll_jitter_ms:
                    return False
            elif clock() - self._created_ms > max_segment_ms - self.roll_jitter_ms:
                return False
        oi = self._offset_index
        if oi is None:
            oi = self.offset_index()
        ti = self._time_index
        if ti is None:
            ti = self.time_index()
        if (
            oi._entries >= oi._max_entries
            or ti._entries >= ti._max_entries - 1
            or not 0 <= last_offset - self.base_offset <= _INT32_MAX
        ):
            return False
        # -- the append
        end = physical + n
        if self._mm is None:
            self._ensure_map()
        else:
            cache = self._cache
            if cache is not None and cache._mru is not self:
                cache.touch(self)
        if end > self._capacity:
            self._grow_map(end)
        # The one copy: the patched first 16 bytes, then the rest straight from `data`.
        self._write((_patch.pack(first_offset, n - LOG_OVERHEAD, leader_epoch),
                     data[_PATCH_SIZE:n]), physical, n)
        self._size = end
        self._next_offset = last_offset + 1
        if max_timestamp > NO_TIMESTAMP:
            max_ts_offset = last_offset
        else:
            max_timestamp, max_ts_offset = NO_TIMESTAMP, -1
        if physical == 0:
            self._rolling_based_timestamp = max_timestamp
            self._rolling_ts_loaded = True
        cur_max = self._max_ts
        if cur_max is None:
            cur_max = self.read_max_timestamp_and_offset_so_far()
        if max_timestamp > cur_max[0]:
            cur_max = self._max_ts = _new_tuple(TimestampOffset, (max_timestamp, max_ts_offset))
        since = self._bytes_since_last_index_entry
        if since > self.config.index_interval_bytes:
            oi.append(last_offset, physical)
            if cur_max[0] != ti._last_entry[0]:
                ti.maybe_append(cur_max[0], cur_max[1])
            since = 0
        self._bytes_since_last_index_entry = since + n
        return True

    def append_batches(
        self,
        data: memoryview,
        n: int,
        batches: list[tuple[int, BatchHeader]],
        first_offset: int,
        leader_epoch: int,
        log_append_time: int | None,
    ) -> tuple[int, int]:
        """`append` for `PartitionLog`'s hot path: the caller has checked that the last
        offset fits this segment's index (`should_roll_fast`) and knows the position
        (`size` before the call). `n` is `len(data)`. Returns (max timestamp, its offset)."""
        physical = self._size
        end = physical + n
        if self._mm is None:
            self._ensure_map()
        else:
            cache = self._cache
            if cache is not None and cache._mru is not self:
                cache.touch(self)
        if end > self._capacity:
            self._grow_map(end)
        # Each batch goes out as its patched header and its untouched rest, all in one
        # `pwritev`: offsets and leader epoch (baseOffset, batchLength rewritten unchanged
        # and partitionLeaderEpoch are adjacent, outside the CRC) in the first 16 bytes,
        # or, when LogAppendTime is stamped, the whole 61-byte header with a new CRC.
        # Header tuple indexes follow BatchHeader's field order.
        offset = first_offset
        max_ts = NO_TIMESTAMP
        max_ts_offset = -1
        buffers: list[bytes | bytearray | memoryview] = []
        for rel, h in batches:
            size = h[1] + LOG_OVERHEAD  # h[1]: batch_length
            if log_append_time is None:
                buffers.append(_patch.pack(offset, h[1], leader_epoch))
                buffers.append(data[rel + _PATCH_SIZE : rel + size])
                offset += h[6] + 1  # h[6]: last_offset_delta
                if h[8] > max_ts:  # h[8]: max_timestamp
                    max_ts, max_ts_offset = h[8], offset - 1
            else:
                buffers.append(_stamped_header(data, rel, h, offset, leader_epoch,
                                               log_append_time))
                buffers.append(data[rel + BATCH_HEADER_SIZE : rel + size])
                offset += h[6] + 1
                if log_append_time > max_ts:
                    max_ts, max_ts_offset = log_append_time, offset - 1
        self._write(buffers, physical, n)
        self._size = end
        self._next_offset = offset
        if physical == 0:
            self._rolling_based_timestamp = max_ts
            self._rolling_ts_loaded = True
        cur_max = self._max_ts
        if cur_max is None:
            cur_max = self.read_max_timestamp_and_offset_so_far()
        if max_ts > cur_max[0]:
            cur_max = self._max_ts = _new_tuple(TimestampOffset, (max_ts, max_ts_offset))
        since = self._bytes_since_last_index_entry
        if since > self.config.index_interval_bytes:
            oi = self._offset_index
            if oi is None:
                oi = self.offset_index()
            oi.append(offset - 1, physical)
            ti = self._time_index
            if ti is None:
                ti = self.time_index()
            ti.maybe_append(cur_max[0], cur_max[1])
            since = 0
        self._bytes_since_last_index_entry = since + n
        return max_ts, max_ts_offset

    # -- roll conditions --------------------------------------------------------------

    def _load_first_batch_timestamp(self) -> None:
        if not self._rolling_ts_loaded:
            h = self._header_at(0)
            self._rolling_based_timestamp = h.max_timestamp if h is not None else None
            self._rolling_ts_loaded = True

    def time_waited_for_roll(self, now_ms: int, message_timestamp: int) -> int:
        """Kafka's `timeWaitedForRoll`: by the first batch's timestamp when it has one,
        else by wall clock since the segment was created."""
        self._load_first_batch_timestamp()
        ts = self._rolling_based_timestamp
        if ts is not None and ts >= 0:
            return message_timestamp - ts
        return now_ms - self._created_ms

    def first_batch_timestamp(self) -> int:
        self._load_first_batch_timestamp()
        ts = self._rolling_based_timestamp
        return ts if ts is not None and ts >= 0 else 2**63 - 1

    def can_convert_to_relative_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= _INT32_MAX

    def should_roll(
        self,
        *,
        max_segment_ms: int,
        max_segment_bytes: int,
        max_timestamp_in_messages: int,
        max_offset_in_messages: int,
        messages_size: int,
        now_ms: int,
    ) -> bool:
        """Kafka's `LogSegment.shouldRoll`: the segment would overflow `segment.bytes`, or
        it is non-empty and older than `segment.ms` minus its jitter (by the first batch's
        timestamp if it has one, else by wall clock), or an index is full, or the last
        offset would not fit the index."""
        return self.should_roll_fast(
            messages_size,
            max_timestamp_in_messages,
            max_offset_in_messages,
            max_segment_bytes,
            max_segment_ms,
            lambda: now_ms,
        )

    def should_roll_fast(
        self,
        messages_size: int,
        max_timestamp_in_messages: int,
        max_offset_in_messages: int,
        max_segment_bytes: int,
        max_segment_ms: int,
        clock: Callable[[], int],
    ) -> bool:
        """`should_roll` for the append path: positional arguments, and the clock is read
        only when the segment has no first-batch timestamp to age by."""
        size = self._size
        if size > max_segment_bytes - messages_size:
            return True
        if size > 0:
            if not self._rolling_ts_loaded:
                self._load_first_batch_timestamp()
            ts = self._rolling_based_timestamp
            waited = (
                max_timestamp_in_messages - ts
                if ts is not None and ts >= 0
                else clock() - self._created_ms
            )
            if waited > max_segment_ms - self.roll_jitter_ms:
                return True
        oi = self._offset_index or self.offset_index()
        if oi._entries >= oi._max_entries:
            return True
        ti = self._time_index or self.time_index()
        if ti._entries >= ti._max_entries - 1:
            return True
        return not 0 <= max_offset_in_messages - self.base_offset <= _INT32_MAX

    # -- timestamps -------------------------------------------------------------------

    def read_max_timestamp_and_offset_so_far(self) -> TimestampOffset:
        if self._max_ts is None:
            self._max_ts = self.time_index().last_entry
        return self._max_ts

    def max_timestamp_so_far(self) -> int:
        return self.read_max_timestamp_and_offset_so_far().timestamp

    def last_modified_ms(self) -> int:
        return os.stat(self.log_path).st_mtime_ns // 1_000_000

    def largest_timestamp(self) -> int:
        """Max record timestamp, or the file's mtime when no batch has a timestamp."""
        ts = self.max_timestamp_so_far()
        return ts if ts >= 0 else self.last_modified_ms()

    def largest_record_timestamp(self) -> int | None:
        ts = self.max_timestamp_so_far()
        return ts if ts >= 0 else None

    def find_offset_by_timestamp(
        self, timestamp: int, starting_offset: int
    ) -> tuple[int, int, int] | None:
        """Kafka's `findOffsetByTimestamp`: (timestamp, offset, leader epoch) of the first
        record with timestamp >= `timestamp` and offset >= `starting_offset`."""
        ts_entry = self.time_index().lookup(timestamp)
        position = self.offset_index().lookup(max(ts_entry.offset, starting_offset)).position
        for pos, h in self.iter_headers(position):
            if h.max_timestamp >= timestamp:
                data = self.read_bytes(pos, h.size)
                for rec in iter_records(data, 0, h):
                    if rec.timestamp >= timestamp and rec.offset >= starting_offset:
                        return rec.timestamp, rec.offset, h.partition_leader_epoch
        return None

    def offset_of_max_timestamp(self) -> tuple[int, int, int] | None:
        """(timestamp, offset, epoch) of the first record carrying the segment's max
        timestamp (Kafka's MAX_TIMESTAMP lookup via `offsetOfMaxTimestamp`)."""
        ts, offset = self.read_max_timestamp_and_offset_so_far()
        if ts < 0:
            return None
        position = self.offset_index().lookup(offset).position
        for pos, h in self.iter_headers(position):
            if h.max_timestamp == ts:
                if h.timestamp_type == TimestampType.LOG_APPEND_TIME:
                    return ts, h.base_offset, h.partition_leader_epoch
                for rec in iter_records(self.read_bytes(pos, h.size), 0, h):
                    if rec.timestamp == ts:
                        return ts, rec.offset, h.partition_leader_epoch
                return None
        return None

    # -- read -------------------------------------------------------------------------

    def read(
        self,
        start_offset: int,
        max_size: int,
        max_position: int | None = None,
        min_one_message: bool = False,
    ) -> SegmentRead | None:
        """Whole batches from the one containing `start_offset`, at most `max_size` bytes
        (but the first batch whole when `min_one_message`), ending at or before
        `max_position`. None when no batch in this segment reaches `start_offset`."""
        if max_size < 0:
            raise ValueError(f"invalid max size {max_size}")
        found = self.translate_offset(start_offset)
        if found is None:
            return None
        start, first = found
        first_size = first.batch_length + LOG_OVERHEAD
        limit_pos = self._size if max_position is None else min(max_position, self._size)
        budget = max(max_size, first_size) if min_one_message else max_size
        end_limit = min(limit_pos, start + budget)
        if end_limit < start + first_size:
            return SegmentRead(start, 0, first.base_offset, first_size, budget < first_size)
        # Walk headers to the last whole batch, first skipping ahead with the index when
        # the walk would be long: a binary search costs about what a dozen header steps
        # do, so short reads (consumers near the tail, small max sizes) skip it.
        scan_from = start + first_size
        if end_limit - scan_from > _INDEX_SKIP_BATCHES * first_size:
            hint = self.offset_index().lookup_position_floor(end_limit)
            if hint is not None and hint.position > scan_from:
                scan_from = hint.position
        end = scan_from
        for pos, h in self.iter_headers(scan_from, end_limit):
            end = pos + h.batch_length + LOG_OVERHEAD
        self._read_span += end - start
        if self._read_span > _UNMAP_READ_SPAN:
            self._drop_mapped_pages()
        return SegmentRead(start, end - start, first.base_offset, first_size, False)

    def _drop_mapped_pages(self) -> None:
        """Unmap the pages header scans faulted into the log maps (`MADV_DONTNEED`: the
        pages stay in the page cache, dirty ones included; only this process's mapping of
        them goes), so a consumer reading a whole segment does not grow the broker's RSS
        by the segment's size. The next scan faults back the few pages it reads."""
        self._read_span = 0
        for mm in (self._mm, self._rmm):
            if mm is not None and _MADV_DONTNEED is not None:
                try:
                    mm.madvise(_MADV_DONTNEED)
                except (OSError, ValueError):
                    pass

    def slice(self, position: int, length: int) -> FileSlice:
        return FileSlice(self.file(), position, length)

    def read_next_offset(self) -> int:
        """The offset after the last batch (Kafka's `readNextOffset`), cached."""
        if self._next_offset is None:
            start = self.offset_index().lookup(self.offset_index().last_offset).position
            nxt = self.base_offset
            for _, h in self.iter_headers(start):
                nxt = h.base_offset + h.last_offset_delta + 1
            self._next_offset = nxt
        return self._next_offset

    # -- recovery and truncation ------------------------------------------------------

    def recover(self) -> int:
        """Rebuild both indexes by scanning the whole file; cut off the first invalid
        batch and everything after it. Returns the number of bytes truncated.

        A batch is valid when its length is sane and inside the file, magic is 2, the CRC
        matches, its offsets fit the index and follow the previous batch (exactly, unless
        the topic is compacted: cleaning leaves gaps)."""
        was_active = self._active
        self._unmap_and_trim_to_file()
        self._indexes_checked = True
        oi = self.offset_index()
        ti = self.time_index()
        oi.reset()
        ti.reset()
        self._max_ts = TimestampOffset(NO_TIMESTAMP, self.base_offset)
        fd = self.file().fileno()
        file_size = os.fstat(fd).st_size
        valid = 0
        last_index_entry = 0
        next_offset = self.base_offset
        interval = self.config.index_interval_bytes
        # Without compaction offsets have no gaps, so a baseOffset (not covered by the CRC)
        # that skips ahead is corruption too; compacted logs may skip. (Kafka checks no
        # gaps at all. Caveat: a log cleaned while compacted and later switched to
        # `delete` only is held to the strict rule when an unclean restart rescans it.)
        contiguous = not self.config.compact
        buf = b""
        buf_pos = 0
        while valid + LOG_OVERHEAD <= file_size:
            # header
            rel = valid - buf_pos
            if rel + BATCH_HEADER_SIZE > len(buf):
                buf = os.pread(fd, max(_SCAN_CHUNK, BATCH_HEADER_SIZE), valid)
                buf_pos, rel = valid, 0
            if len(buf) - rel < BATCH_HEADER_SIZE:
                break
            h = read_batch_header(buf, rel)
            size = h.batch_length + LOG_OVERHEAD
            if h.batch_length < _MIN_BATCH_LENGTH or valid + size > file_size or h.magic != 2:
                break
            if rel + size > len(buf):
                buf = os.pread(fd, max(_SCAN_CHUNK, size), valid)
                buf_pos, rel = valid, 0
                if len(buf) < size:
                    break
            try:
                if not batch_crc_ok(buf, rel, h):
                    break
            except ProtocolError:
                break
            last = h.base_offset + h.last_offset_delta
            if (
                h.last_offset_delta < 0
                or h.base_offset < next_offset
                or (contiguous and h.base_offset != next_offset)
                or not self.can_convert_to_relative_offset(last)
            ):
                break
            if h.max_timestamp > self._max_ts.timestamp:
                self._max_ts = TimestampOffset(h.max_timestamp, last)
            if valid - last_index_entry > interval:
                oi.append(last, valid)
                ti.maybe_append(self._max_ts.timestamp, self._max_ts.offset)
                last_index_entry = valid
            valid += size
            next_offset = last + 1
        truncated = file_size - valid
        if truncated:
            os.ftruncate(fd, valid)
        self._size = valid
        self._flushed_size = min(self._flushed_size, valid)
        self._next_offset = next_offset
        self._bytes_since_last_index_entry = valid - last_index_entry if valid else 0
        self._rolling_ts_loaded = False
        oi.trim_to_valid_size()
        ti.maybe_append(self._max_ts.timestamp, self._max_ts.offset, skip_full_check=True)
        ti.trim_to_valid_size()
        if was_active:
            self.activate()
        return truncated

    def _unmap_and_trim_to_file(self) -> None:
        """Drop the map without touching the file size (recovery reads the real file)."""
        self._drop_read_map()
        if self._mm is not None:
            self._mm.close()
            self._mm = None
            self._capacity = 0

    def truncate_to(self, offset: int, now_ms: int) -> int:
        """Remove every batch whose last offset >= `offset` (so the batch containing
        `offset` goes whole) and index entries at or past it. Returns bytes removed."""
        found = self.translate_offset(offset)
        cut_offset = offset if found is None else min(offset, found[1].base_offset)
        oi = self.offset_index()
        ti = self.time_index()
        oi.truncate_to(cut_offset)
        ti.truncate_to(cut_offset)
        self.txn_index.truncate_to(cut_offset)
        removed = 0
        if found is not None:
            pos = found[0]
            removed = self._size - pos
            was_mapped = self._mm is not None
            self._unmap_and_trim_to_file()
            self._size = pos
            os.ftruncate(self.file().fileno(), pos)
            self._flushed_size = min(self._flushed_size, pos)
            self._next_offset = cut_offset
            if was_mapped or self._active:
                self._ensure_map()
        if self._size == 0:
            self._created_ms = now_ms
            self._rolling_based_timestamp = None
            self._rolling_ts_loaded = True
            self._next_offset = self.base_offset
        self._bytes_since_last_index_entry = 0
        if self.max_timestamp_so_far() >= 0 or found is not None:
            self._max_ts = self._read_largest_timestamp()
        return removed

    def _read_largest_timestamp(self) -> TimestampOffset:
        last = self.time_index().last_entry
        position = self.offset_index().lookup(last.offset).position
        best = last
        for _, h in self.iter_headers(position):
            if h.max_timestamp > best.timestamp:
                best = TimestampOffset(h.max_timestamp, h.base_offset + h.last_offset_delta)
        return best

    # -- durability and files ---------------------------------------------------------

    def flush(self) -> None:
        """fsync the log (mmap'd pages included) and msync both indexes."""
        f = self.file()
        os.fsync(f.fileno())
        self._flushed_size = self._size
        if self._offset_index is not None:
            self._offset_index.flush()
        if self._time_index is not None:
            self._time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        """Kafka's `LogSegment.close`: final time-index entry, trim everything, close.
        The active segment leaves both index files, even empty ones (else the next open
        would count its index as missing and rescan the segment)."""
        if self._active and self._offset_index is None:
            self.offset_index()
        if self._max_ts is not None and (self._time_index is not None or self._active):
            ti = self.time_index()
            try:
                ti.maybe_append(self._max_ts.timestamp, self._max_ts.offset, skip_full_check=True)
            except ValueError:
                pass
        f = self._file
        self._active = False
        self.release_handles()
        if f is not None and not f.closed:
            f.close()

    def change_file_suffixes(self, old_suffix: str, new_suffix: str) -> None:
        """Rename the three files (open handles keep working)."""
        for attr in ("log_path", "index_path", "time_index_path"):
            path: str = getattr(self, attr)
            if not path.endswith(old_suffix):
                raise ValueError(f"{path} does not end with {old_suffix!r}")
            new = (
                path[: len(path) - len(old_suffix)] + new_suffix
                if old_suffix
                else path + new_suffix
            )
            if os.path.exists(path):
                os.replace(path, new)
            setattr(self, attr, new)
        if self._offset_index is not None:
            self._offset_index.path = self.index_path
        if self._time_index is not None:
            self._time_index.path = self.time_index_path
        txn_path = self.txn_index.path
        if not txn_path.endswith(old_suffix):
            raise ValueError(f"{txn_path} does not end with {old_suffix!r}")
        self.txn_index.rename(
            txn_path[: len(txn_path) - len(old_suffix)] + new_suffix if old_suffix
            else txn_path + new_suffix)

    def delete_files(self) -> None:
        """Unlink the files (handles are released first)."""
        self.release_handles()
        for path in (self.log_path, self.index_path, self.time_index_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.txn_index.delete()


# ---------------------------------------------------------------------- swap recovery

_OFFSET_PREFIX_LEN = 20
_SEGMENT_FILE_TYPES = (
    LOG_FILE_SUFFIX,
    INDEX_FILE_SUFFIX,
    TIME_INDEX_FILE_SUFFIX,
    TXN_INDEX_FILE_SUFFIX,
)


def _stamped_header(data: memoryview, rel: int, h: BatchHeader, base_offset: int,
                    leader_epoch: int, log_append_time: int) -> bytes | bytearray:
    """The 61-byte header of the batch at `rel` of `data` as it is stored with LogAppendTime:
    offsets and leader epoch patched, the timestamp type bit set and maxTimestamp =
    `log_append_time`, the CRC recomputed over the new header and the unchanged records
    (Kafka's `DefaultRecordBatch.setMaxTimestamp`). `data` itself is not modified."""
    header = bytearray(data[rel : rel + BATCH_HEADER_SIZE])
    _pack_patch(header, 0, base_offset, h.batch_length, leader_epoch)
    if h.attributes & _TIMESTAMP_TYPE_MASK and h.max_timestamp == log_append_time:
        return header  # already stamped: the CRC stands
    _pack_attributes(header, _ATTRIBUTES_AT, h.attributes | _TIMESTAMP_TYPE_MASK)
    _pack_max_timestamp(header, _MAX_TIMESTAMP_AT, log_append_time)
    crc = crc32c(memoryview(header)[_ATTRIBUTES_AT:])
    crc = crc32c(data[rel + BATCH_HEADER_SIZE : rel + LOG_OVERHEAD + h.batch_length], crc)
    _pack_crc(header, _CRC_AT, crc)
    return header


def _file_offset(name: str) -> int | None:
    """The base offset a segment-style file name starts with (`<20 digits>.`), else None."""
    prefix = name[:_OFFSET_PREFIX_LEN]
    if len(name) > _OFFSET_PREFIX_LEN and name[_OFFSET_PREFIX_LEN] == "." and prefix.isdigit():
        return int(prefix)
    return None


def _next_offset_of_log_file(path: str, base_offset: int) -> int:
    """The offset after the last whole batch of a `.log` file (headers only)."""
    nxt = base_offset
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pos = 0
        while pos + BATCH_HEADER_SIZE <= size:
            head = os.pread(fd, BATCH_HEADER_SIZE, pos)
            if len(head) < BATCH_HEADER_SIZE:
                break
            base, length, delta = _SCAN_FIELDS.unpack_from(head)
            if length < _MIN_BATCH_LENGTH or pos + length + LOG_OVERHEAD > size:
                break
            nxt = base + delta + 1
            pos += length + LOG_OVERHEAD
    finally:
        os.close(fd)
    return nxt


def recover_interrupted_swaps(dir: str | os.PathLike[str]) -> list[str]:
    """Finish or roll back a segment swap a crash interrupted (Kafka's `LogLoader`:
    `removeTempFilesAndCollectSwapFiles` plus its swap passes). Returns what was done.

    The log cleaner writes a replacement segment as `<base>.*.cleaned`, renames every
    file of it to `.swap`, renames the replaced segments `.deleted`, then drops the
    `.swap` suffix. So on load:

    * `.cleaned` files are removed, and so is every `.swap` file whose offset is at or
      above the lowest `.cleaned` one: that swap never got all its files renamed, the
      old segments are still whole, and the swap is rolled back.
    * the remaining `.swap` files are a complete replacement: every other file with an
      offset in [lowest swap `.log` base, highest swap `.log` next offset) belongs to a
      replaced segment and is removed, then the `.swap` suffixes are dropped.
    """
    dir = os.fspath(dir)
    actions: list[str] = []
    swaps: list[str] = []
    cleaned: list[str] = []
    min_cleaned = None
    for name in os.listdir(dir):
        if name.endswith(CLEANED_FILE_SUFFIX):
            cleaned.append(name)
            off = _file_offset(name)
            if off is not None and (min_cleaned is None or off < min_cleaned):
                min_cleaned = off
        elif name.endswith(SWAP_FILE_SUFFIX):
            swaps.append(name)
    for name in cleaned:
        _unlink_quietly(os.path.join(dir, name))
        actions.append(f"removed {name}")
    valid: list[str] = []
    for name in swaps:
        off = _file_offset(name)
        if off is None or (min_cleaned is not None and off >= min_cleaned):
            _unlink_quietly(os.path.join(dir, name))
            actions.append(f"removed incomplete swap file {name}")
        else:
            valid.append(name)
    lo: int | None = None
    hi: int | None = None
    for name in valid:
        if name.endswith(LOG_FILE_SUFFIX + SWAP_FILE_SUFFIX):
            base = _file_offset(name)
            assert base is not None
            nxt = _next_offset_of_log_file(os.path.join(dir, name), base)
            lo = base if lo is None else min(lo, base)
            hi = nxt if hi is None else max(hi, nxt)
    if lo is not None and hi is not None:
        for name in os.listdir(dir):
            off = _file_offset(name)
            if off is None or not name[_OFFSET_PREFIX_LEN:].startswith(_SEGMENT_FILE_TYPES):
                continue  # Kafka deletes any offset-named file here; we spare the snapshots
            if name.endswith(SWAP_FILE_SUFFIX):
                continue
            if lo <= off < hi and os.path.isfile(os.path.join(dir, name)):
                _unlink_quietly(os.path.join(dir, name))
                actions.append(f"removed replaced {name}")
    for name in valid:
        path = os.path.join(dir, name)
        os.replace(path, path[: -len(SWAP_FILE_SUFFIX)])
        actions.append(f"completed swap of {name}")
    if actions:
        _fsync_dir(dir)
    return actions


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
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
