"""Sparse, memory-mapped segment indexes in Kafka's on-disk format.

How this works
--------------
Each segment `<base>.log` has two companions, byte-identical to Kafka's
(`storage/.../internals/log/{AbstractIndex,OffsetIndex,TimeIndex}.java`):

* `<base>.index`: 8-byte entries `>i relative_offset, >i position`. An entry maps the
  (largest) offset of an append to the file position where that append starts. Offsets are
  stored relative to the segment's base offset, so they must fit an int32.
* `<base>.timeindex`: 12-byte entries `>q timestamp, >i relative_offset`: "the largest
  timestamp seen before this offset". Timestamps and offsets only increase.

A new index file is preallocated to `segment.index.bytes` rounded down to the entry size,
mmap'd, and filled from the front; `entries` says how much of the map is real. Closing or
rolling trims the file to `entries * entry_size`. An existing file is trusted to be exactly
full (Kafka's rule): `entries = file_size // entry_size`; a sanity check catches the obvious
lies and the caller rebuilds the index from the log when it fails.

Lookups are binary searches straight over the map with `struct.unpack_from`, using Kafka's
"warm section" variant: the last 8 KiB of entries is searched first because nearly every
lookup (tailing consumers) lands there, which keeps those pages hot.

Python's `mmap` keeps its own duplicate of the file descriptor; we close ours right after
mapping, so each open index costs exactly one fd.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import NamedTuple

from storage.errors import CorruptIndex, IndexOffsetOverflow

__all__ = [
    "NO_TIMESTAMP",
    "OffsetIndex",
    "OffsetPosition",
    "TimeIndex",
    "TimestampOffset",
]

#: RecordBatch.NO_TIMESTAMP
NO_TIMESTAMP = -1
_INT32_MAX = 2**31 - 1
#: Kafka's warm section is the last 8192 bytes of entries (AbstractIndex.warmEntries()).
_WARM_BYTES = 8192

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_pack_offset_entry = _OFFSET_ENTRY.pack_into
_new_tuple = tuple.__new__


class OffsetPosition(NamedTuple):
    offset: int
    position: int


class TimestampOffset(NamedTuple):
    timestamp: int
    offset: int


def _round_down(number: int, factor: int) -> int:
    return factor * (number // factor)


class _Index:
    """What both indexes share: file, map, entry count, resize/trim, the binary search."""

    ENTRY_SIZE = 0

    __slots__ = (
        "path",
        "base_offset",
        "max_index_size",
        "_mm",
        "_length",
        "_entries",
        "_max_entries",
    )

    def __init__(self, path: str | os.PathLike[str], base_offset: int, max_index_size: int) -> None:
        self.path = os.fspath(path)
        self.base_offset = base_offset
        self.max_index_size = max_index_size
        self._mm: mmap.mmap | None = None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            newly_created = True
        except FileExistsError:
            fd = os.open(self.path, os.O_RDWR)
            newly_created = False
        try:
            length = os.fstat(fd).st_size
            if newly_created:
                if max_index_size < self.ENTRY_SIZE:
                    raise ValueError(f"invalid max index size {max_index_size}")
                length = _round_down(max_index_size, self.ENTRY_SIZE)
                os.ftruncate(fd, length)
            self._map(fd, length)
        finally:
            os.close(fd)
        self._length = length
        self._max_entries = length // self.ENTRY_SIZE
        self._entries = 0 if newly_created else length // self.ENTRY_SIZE

    def _map(self, fd: int, length: int) -> None:
        self._mm = mmap.mmap(fd, length) if length > 0 else None

    # -- sizes ----------------------------------------------------------------------------

    @property
    def entries(self) -> int:
        return self._entries

    @property
    def max_entries(self) -> int:
        return self._max_entries

    @property
    def length(self) -> int:
        """Current size of the file (and map) in bytes."""
        return self._length

    def size_in_bytes(self) -> int:
        """Bytes used by real entries."""
        return self._entries * self.ENTRY_SIZE

    def is_full(self) -> bool:
        return self._entries >= self._max_entries

    def can_append_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= _INT32_MAX

    def relative_offset(self, offset: int) -> int:
        rel = offset - self.base_offset
        if rel < 0 or rel > _INT32_MAX:
            raise IndexOffsetOverflow(f"integer overflow for offset {offset} ({self.path})")
        return rel

    # -- file management ------------------------------------------------------------------

    def resize(self, new_size: int) -> bool:
        """Set file and map size to `new_size` rounded down to whole entries.

        Used to trim on close/roll and to grow back to `max_index_size` when a segment becomes
        active again. Returns whether anything changed.
        """
        rounded = _round_down(new_size, self.ENTRY_SIZE)
        if rounded == self._length:
            return False
        self._unmap()
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.ftruncate(fd, rounded)
            self._map(fd, rounded)
        finally:
            os.close(fd)
        self._length = rounded
        self._max_entries = rounded // self.ENTRY_SIZE
        self._entries = min(self._entries, self._max_entries)
        self._on_entries_changed()
        return True

    def trim_to_valid_size(self) -> None:
        self.resize(self._entries * self.ENTRY_SIZE)

    def reset(self) -> None:
        """Drop every entry and grow back to `max_index_size` (before a rebuild)."""
        self._truncate_to_entries(0)
        self.resize(self.max_index_size)

    def flush(self) -> None:
        if self._mm is not None:
            self._mm.flush()

    def close(self) -> None:
        """Trim to the real entries and unmap."""
        if self._mm is not None or self._length != self._entries * self.ENTRY_SIZE:
            self.trim_to_valid_size()
        self._unmap()

    def close_handler(self) -> None:
        """Unmap without trimming (the file keeps its size)."""
        self._unmap()

    def _unmap(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def delete_if_exists(self) -> bool:
        self._unmap()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        return True

    def rename_to(self, path: str | os.PathLike[str]) -> None:
        os.replace(self.path, path)
        self.path = os.fspath(path)

    # -- search ---------------------------------------------------------------------------

    def _truncate_to_entries(self, entries: int) -> None:
        self._entries = entries
        self._on_entries_changed()

    def _on_entries_changed(self) -> None:  # pragma: no cover - overridden
        pass

    def _slot(self, target: int, by_value: bool, upper: bool) -> int:
        """Kafka's `indexSlotRangeFor`: the slot of the largest entry <= target
        (`upper=False`) or the smallest entry >= target (`upper=True`), comparing keys or
        values; -1 if there is none. `target` is already in stored (relative) form."""
        entries = self._entries
        if entries == 0:
            return -1
        mm = self._mm
        assert mm is not None
        es = self.ENTRY_SIZE
        # Read just the compared field: one int per probe, no tuple of the whole entry.
        if by_value:
            unpack = self._value_struct.unpack_from
            at = self._value_at
        else:
            unpack = self._key_struct.unpack_from
            at = 0

        first_hot = max(0, entries - 1 - _WARM_BYTES // es)
        if unpack(mm, first_hot * es + at)[0] < target:
            lo, hi = first_hot, entries - 1
        else:
            if unpack(mm, at)[0] > target:
                return 0 if upper else -1
            lo, hi = 0, first_hot
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            found = unpack(mm, mid * es + at)[0]
            if found > target:
                hi = mid - 1
            elif found < target:
                lo = mid
            else:
                return mid
        if not upper or unpack(mm, lo * es + at)[0] == target:
            # The search can end on an exact match without probing it (lo == hi from the
            # start): that entry is the answer either way.
            return lo
        return -1 if lo == entries - 1 else lo + 1

    _entry_struct: struct.Struct
    _key_struct: struct.Struct
    _value_struct: struct.Struct
    _value_at: int


class OffsetIndex(_Index):
    """`<base>.index`: offset -> file position, 8-byte entries."""

    ENTRY_SIZE = 8
    _entry_struct = _OFFSET_ENTRY
    _key_struct = _I32  # relative offset
    _value_struct = _I32  # position
    _value_at = 4
    __slots__ = ("_last_offset",)

    def __init__(self, path: str | os.PathLike[str], base_offset: int, max_index_size: int) -> None:
        super().__init__(path, base_offset, max_index_size)
        self._last_offset = self._read_last_offset()

    def _read_last_offset(self) -> int:
        if self._entries == 0 or self._mm is None:
            return self.base_offset
        return self.base_offset + _I32.unpack_from(self._mm, (self._entries - 1) * 8)[0]

    def _on_entries_changed(self) -> None:
        self._last_offset = self._read_last_offset()

    @property
    def last_offset(self) -> int:
        return self._last_offset

    def sanity_check(self, log_size: int | None = None) -> None:
        """Kafka's checks, plus: every position lies inside the log and the first and last
        entries are in order. Raises `CorruptIndex`."""
        if self._entries != 0 and self._last_offset < self.base_offset:
            raise CorruptIndex(
                f"corrupt index {self.path}: last offset {self._last_offset} "
                f"is below the base offset {self.base_offset}"
            )
        if self._length % self.ENTRY_SIZE != 0:
            raise CorruptIndex(
                f"index {self.path} is corrupt: {self._length} bytes is not a multiple of 8"
            )
        if self._entries > 0:
            first = self.entry(0)
            last = self.entry(self._entries - 1)
            if self._entries > 1 and (
                last.offset <= first.offset or last.position <= first.position
            ):
                raise CorruptIndex(f"index {self.path} is not ordered: {first} .. {last}")
            if first.position < 0 or (log_size is not None and last.position >= max(log_size, 1)):
                raise CorruptIndex(
                    f"index {self.path} points at position {last.position} "
                    f"past the log ({log_size})"
                )

    def entry(self, n: int) -> OffsetPosition:
        if n >= self._entries:
            raise IndexError(f"entry {n} of index {self.path} with {self._entries} entries")
        assert self._mm is not None
        rel, pos = _OFFSET_ENTRY.unpack_from(self._mm, n * 8)
        return OffsetPosition(self.base_offset + rel, pos)

    def lookup(self, target_offset: int) -> OffsetPosition:
        """The entry with the largest offset <= `target_offset`, or (base_offset, 0)."""
        slot = self._slot(target_offset - self.base_offset, False, False)
        if slot == -1:
            return OffsetPosition(self.base_offset, 0)
        assert self._mm is not None
        rel, pos = _OFFSET_ENTRY.unpack_from(self._mm, slot * 8)
        return OffsetPosition(self.base_offset + rel, pos)

    def lookup_position_floor(self, position: int) -> OffsetPosition | None:
        """The entry with the largest position <= `position`, or None."""
        slot = self._slot(position, True, False)
        if slot == -1:
            return None
        assert self._mm is not None
        rel, pos = _OFFSET_ENTRY.unpack_from(self._mm, slot * 8)
        return OffsetPosition(self.base_offset + rel, pos)

    def fetch_upper_bound_offset(
        self, fetch_position: int, fetch_size: int
    ) -> OffsetPosition | None:
        """Kafka's `fetchUpperBoundOffset`: the first entry at or after position+size."""
        slot = self._slot(fetch_position + fetch_size, True, True)
        if slot == -1:
            return None
        return self.entry(slot)

    def append(self, offset: int, position: int) -> None:
        """Add an entry; `offset` must exceed every offset already in the index."""
        entries = self._entries
        if entries >= self._max_entries:
            raise ValueError(f"attempt to append to a full index (size = {entries})")
        if entries == 0 or offset > self._last_offset:
            rel = offset - self.base_offset
            if rel < 0 or rel > _INT32_MAX:
                raise IndexOffsetOverflow(f"integer overflow for offset {offset} ({self.path})")
            assert self._mm is not None
            _pack_offset_entry(self._mm, entries * 8, rel, position)
            self._entries = entries + 1
            self._last_offset = offset
        else:
            raise ValueError(
                f"attempt to append an offset {offset} to position {self._entries} no larger "
                f"than the last offset appended ({self._last_offset}) to {self.path}"
            )

    def truncate_to(self, offset: int) -> None:
        """Remove every entry with offset >= `offset`."""
        target = offset - self.base_offset
        slot = self._slot(target, False, False)
        if slot < 0:
            new_entries = 0
        else:
            assert self._mm is not None
            new_entries = slot if _I32.unpack_from(self._mm, slot * 8)[0] == target else slot + 1
        self._truncate_to_entries(new_entries)

    def truncate(self) -> None:
        self._truncate_to_entries(0)


class TimeIndex(_Index):
    """`<base>.timeindex`: timestamp -> offset, 12-byte entries."""

    ENTRY_SIZE = 12
    _entry_struct = _TIME_ENTRY
    _key_struct = _I64  # timestamp
    _value_struct = _I32  # relative offset
    _value_at = 8
    __slots__ = ("_last_entry",)

    def __init__(self, path: str | os.PathLike[str], base_offset: int, max_index_size: int) -> None:
        super().__init__(path, base_offset, max_index_size)
        self._last_entry = self._read_last_entry()

    def _read_last_entry(self) -> TimestampOffset:
        if self._entries == 0 or self._mm is None:
            return TimestampOffset(NO_TIMESTAMP, self.base_offset)
        ts, rel = _TIME_ENTRY.unpack_from(self._mm, (self._entries - 1) * 12)
        return TimestampOffset(ts, self.base_offset + rel)

    def _on_entries_changed(self) -> None:
        self._last_entry = self._read_last_entry()

    @property
    def last_entry(self) -> TimestampOffset:
        return self._last_entry

    def is_full(self) -> bool:
        # Kafka keeps the last slot for the entry appended when the segment is rolled/closed.
        return self._entries >= self._max_entries - 1

    def sanity_check(self, log_end_offset: int | None = None) -> None:
        """Kafka's checks (plus offsets inside the segment). Raises `CorruptIndex`."""
        last_ts, last_offset = self._last_entry
        if self._entries != 0:
            first = self.entry(0)
            if last_ts < first.timestamp:
                raise CorruptIndex(
                    f"corrupt time index {self.path}: last timestamp {last_ts} is less than "
                    f"the first timestamp {first.timestamp}"
                )
            if last_offset < self.base_offset or last_offset < first.offset:
                raise CorruptIndex(
                    f"corrupt time index {self.path}: last offset {last_offset} is less than "
                    f"the first offset"
                )
            if log_end_offset is not None and last_offset >= max(
                log_end_offset, self.base_offset + 1
            ):
                raise CorruptIndex(
                    f"corrupt time index {self.path}: offset {last_offset} is past the log end"
                )
        if self._length % self.ENTRY_SIZE != 0:
            raise CorruptIndex(
                f"time index {self.path} is corrupt: {self._length} bytes is not a multiple of 12"
            )

    def entry(self, n: int) -> TimestampOffset:
        if n >= self._entries:
            raise IndexError(f"entry {n} of time index {self.path} with {self._entries} entries")
        assert self._mm is not None
        ts, rel = _TIME_ENTRY.unpack_from(self._mm, n * 12)
        return TimestampOffset(ts, self.base_offset + rel)

    def lookup(self, target_timestamp: int) -> TimestampOffset:
        """The entry with the largest timestamp <= target, or (NO_TIMESTAMP, base_offset)."""
        slot = self._slot(target_timestamp, False, False)
        if slot == -1:
            return TimestampOffset(NO_TIMESTAMP, self.base_offset)
        return self.entry(slot)

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        """Append (timestamp, offset) if the timestamp is larger than the last one.

        Re-appending the last entry is a no-op (happens on close and on roll).
        """
        entries = self._entries
        if not skip_full_check and entries >= self._max_entries - 1:
            raise ValueError(f"attempt to append to a full time index (size = {entries})")
        last_ts, last_offset = self._last_entry
        if timestamp == last_ts and offset >= last_offset and entries != 0:
            return  # the common case on the append path: nothing new
        if self._entries != 0 and offset < last_offset:
            raise ValueError(
                f"attempt to append an offset ({offset}) to slot {self._entries} no larger than "
                f"the last offset appended ({last_offset}) to {self.path}"
            )
        if self._entries != 0 and timestamp < last_ts:
            raise ValueError(
                f"attempt to append a timestamp ({timestamp}) to slot {self._entries} no larger "
                f"than the last timestamp appended ({last_ts}) to {self.path}"
            )
        if timestamp > last_ts:
            if self._entries >= self._max_entries:
                raise ValueError(f"time index {self.path} has no room left")
            assert self._mm is not None
            _TIME_ENTRY.pack_into(
                self._mm, self._entries * 12, timestamp, self.relative_offset(offset)
            )
            self._entries += 1
            self._last_entry = _new_tuple(TimestampOffset, (timestamp, offset))

    def truncate_to(self, offset: int) -> None:
        """Remove every entry with offset >= `offset`."""
        target = offset - self.base_offset
        slot = self._slot(target, True, False)
        if slot < 0:
            new_entries = 0
        else:
            assert self._mm is not None
            new_entries = (
                slot if _I32.unpack_from(self._mm, slot * 12 + 8)[0] == target else slot + 1
            )
        self._truncate_to_entries(new_entries)

    def truncate(self) -> None:
        self._truncate_to_entries(0)
