"""File slices: a byte range of a segment file that the broker sends with `sendfile`.

Lifetime rule
-------------
A `FileSlice` holds a strong reference to the open file object it was cut from. Storage
never closes a segment file that a slice may still use: evicting an idle segment from the
handle cache only *drops storage's reference*; the descriptor is closed by CPython when the
last reference (storage's or any slice's) goes away. So a slice stays sendable for as long
as the broker holds it, with these exceptions, all of which Kafka shares:

* `PartitionLog.close()` / `LogManager.shutdown()` close files outright; slices cut before
  then fail with `EBADF` (shutdown only).
* Deleting a segment (retention, `delete_records`, topic deletion) renames and later
  unlinks its files; an open descriptor keeps the bytes readable until it is closed.
* `truncate_to()` shortens the file in place; a slice that reaches past the new end reads
  fewer bytes than `len(slice)`. The broker must treat a short `sendfile` at EOF as an error
  for that connection (Kafka does the same).

Slices are also readable without sendfile (`read()`), for TLS and in-memory streams.
"""

from __future__ import annotations

import os
from typing import Protocol


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


class FileSlice:
    """`length` bytes of `file` starting at byte `position`."""

    __slots__ = ("file", "position", "length")

    def __init__(self, file: _HasFileno, position: int, length: int) -> None:
        if position < 0 or length < 0:
            raise ValueError(f"bad slice position={position} length={length}")
        self.file = file
        self.position = position
        self.length = length

    def __len__(self) -> int:
        return self.length

    def fileno(self) -> int:
        return self.file.fileno()

    def read(self) -> bytes:
        """The slice's bytes (a copy), via `pread`; short only if the file was truncated."""
        fd = self.file.fileno()
        out = bytearray()
        pos, end = self.position, self.position + self.length
        while pos < end:
            chunk = os.pread(fd, min(end - pos, 1 << 20), pos)
            if not chunk:
                break
            out += chunk
            pos += len(chunk)
        return bytes(out)

    def __repr__(self) -> str:
        name = getattr(self.file, "name", self.file)
        return f"FileSlice({name!r}, position={self.position}, length={self.length})"
