"""The aborted-transaction index of a segment: Kafka's `TransactionIndex` (`.txnindex`).

How this works
--------------
When an ABORT marker completes a transaction, the segment the marker lands in gets one
entry in its `<base offset>.txnindex` file. An entry is 34 bytes, big-endian, Kafka's
`AbortedTxn` layout exactly:

    version int16 (0) | producerId int64 | firstOffset int64 | lastOffset int64 |
    lastStableOffset int64

`firstOffset` is the transaction's first offset (possibly in an earlier segment),
`lastOffset` the offset of the ABORT marker, and `lastStableOffset` the partition's last
stable offset once that transaction completed: the first offset of the next still-open
transaction, or the marker's offset + 1 when none was open. Entries are in marker order
(`lastOffset` strictly increases within a file).

A read_committed fetch of [fetch offset, upper bound) collects the entries overlapping it
(`lastOffset >= fetch offset` and `firstOffset < upper bound`) from the segment holding
the fetch offset onwards; a segment whose entry has `lastStableOffset >= upper bound`
ends the search, since every transaction overlapping the range completed by then.

The file does not exist until the first abort lands in the segment (as in Kafka). A torn
trailing entry (fewer than 34 bytes) is ignored by readers; `sanity_check` fails on an
entry whose `lastOffset` lies below the segment's base offset or whose version is newer
than 0, and the log then rebuilds the index from its batches.

Not thread-safe: `PartitionLog` calls it under its lock. Entries are cached in memory
after the first read (a segment holds few aborts), so a fetch never rereads the file.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from storage.errors import CorruptIndex

__all__ = [
    "ABORTED_TXN_SIZE",
    "AbortedTxn",
    "TransactionIndex",
    "decode_entries",
    "encode_entry",
]

_ENTRY = struct.Struct(">hqqqq")
ABORTED_TXN_SIZE = _ENTRY.size  # 34
CURRENT_VERSION = 0


class AbortedTxn(NamedTuple):
    """One `.txnindex` entry (Kafka's `AbortedTxn`)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


def encode_entry(txn: AbortedTxn) -> bytes:
    return _ENTRY.pack(CURRENT_VERSION, *txn)


def decode_entries(data: bytes, path: str = "") -> list[AbortedTxn]:
    """The whole entries of `data` (a torn trailing entry is ignored, as Kafka's reader
    does). `CorruptIndex` for an entry of an unknown (newer) version."""
    out: list[AbortedTxn] = []
    for pos in range(0, len(data) - ABORTED_TXN_SIZE + 1, ABORTED_TXN_SIZE):
        version, pid, first, last, lso = _ENTRY.unpack_from(data, pos)
        if version > CURRENT_VERSION:
            raise CorruptIndex(
                f"Unexpected aborted transaction version {version} in transaction index "
                f"{path}, current version is {CURRENT_VERSION}")
        out.append(AbortedTxn(pid, first, last, lso))
    return out


class TransactionIndex:
    """The `.txnindex` file of one segment (created on the first `append`)."""

    def __init__(self, path: str, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._entries: list[AbortedTxn] | None = None  # None: not read yet

    # -- reading ---------------------------------------------------------------------

    @property
    def entries(self) -> list[AbortedTxn]:
        """Every entry, oldest first (read from the file once, then kept)."""
        if self._entries is None:
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
            self._entries = decode_entries(data, self.path)
        return self._entries

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def __len__(self) -> int:
        return len(self.entries)

    def collect(self, fetch_offset: int, upper_bound_offset: int
                ) -> tuple[list[AbortedTxn], bool]:
        """Kafka's `collectAbortedTxns`: the entries overlapping [fetch_offset,
        upper_bound_offset), and whether the search is complete (no later segment can
        hold one)."""
        found: list[AbortedTxn] = []
        for txn in self.entries:
            if txn.last_offset >= fetch_offset and txn.first_offset < upper_bound_offset:
                found.append(txn)
            if txn.last_stable_offset >= upper_bound_offset:
                return found, True
        return found, False

    def sanity_check(self) -> None:
        """`CorruptIndex` if an entry ends below the segment's base offset, has an unknown
        version, or the file ends in a torn entry (which a later append would misalign)."""
        self._entries = None
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            size = 0
        if size % ABORTED_TXN_SIZE:
            raise CorruptIndex(
                f"Transaction index {self.path} has a torn entry ({size} bytes is not a "
                f"multiple of {ABORTED_TXN_SIZE})")
        for txn in self.entries:
            if txn.last_offset < self.base_offset:
                raise CorruptIndex(
                    f"Last offset of aborted transaction {txn} in index {self.path} is less "
                    f"than start offset {self.base_offset}")

    # -- writing ---------------------------------------------------------------------

    def append(self, txn: AbortedTxn) -> None:
        """Add an entry (creating the file). Its last offset must exceed the previous one."""
        entries = self.entries
        if entries and entries[-1].last_offset >= txn.last_offset:
            raise ValueError(
                f"The last offset of appended transactions must increase sequentially, but "
                f"{txn.last_offset} is not greater than current last offset "
                f"{entries[-1].last_offset} of index {self.path}")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, encode_entry(txn))
        finally:
            os.close(fd)
        entries.append(txn)

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or after `offset`."""
        entries = self.entries
        keep = 0
        while keep < len(entries) and entries[keep].last_offset < offset:
            keep += 1
        if keep < len(entries):
            self._truncate_file(keep)
            del entries[keep:]

    def reset(self) -> None:
        """Remove every entry (the file stays, empty, if it existed)."""
        if self.exists():
            self._truncate_file(0)
        self._entries = []

    def _truncate_file(self, count: int) -> None:
        try:
            os.truncate(self.path, count * ABORTED_TXN_SIZE)
        except FileNotFoundError:
            pass

    def flush(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, new_path: str) -> None:
        """Rename the file (if it exists) and follow it."""
        if os.path.exists(self.path):
            os.replace(self.path, new_path)
        self.path = new_path

    def delete(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._entries = []
