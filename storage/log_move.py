"""Moving a partition's log to another log dir (AlterReplicaLogDirs), in two phases.

How this works
--------------
Kafka moves a replica by creating a "future" log in the destination dir, filling it with a
fetcher thread until it has caught up, and then swapping the two. We copy files instead of
records, in two phases, so that appends stop only while the tail is copied:

1. `LogManager.begin_move` rolls the log, so that every segment but the new (empty) active
   one is immutable, and names the future dir `<dest>/<topic>-<partition>.<uuid>-future`
   (Kafka's `logFutureDirName`). `LogMove.copy_bulk` (blocking: run it in a worker thread
   while the log keeps taking appends) copies the files of those immutable segments, noting
   each source's (inode, size, mtime).
2. `LogManager.finish_move` (short, under the manager's lock) closes the log (flush, trimmed
   indexes, a producer snapshot), then `LogMove.copy_rest` copies every file that is new or
   changed since phase 1 (the segments appended to since the roll, small files such as
   snapshots, `partition.metadata` and `leader-epoch-checkpoint`; a segment the cleaner
   replaced has a new inode), removes the copies of files that are gone (retention,
   compaction) and fsyncs everything. The manager then renames the current dir to
   `<topic>-<partition>.<uuid>-delete`, the future dir to `<topic>-<partition>`, and reopens
   the log there (a clean open: nothing to recover).

Crash safety: until the current dir is renamed, the partition's data is whole in its own
dir and a `-future` dir is only a partial copy; after it, the future dir holds all of it.
So at startup (`LogManager._resolve_future_dirs`) a `-future` dir whose partition still has
a log is removed, and one whose partition has none (a crash between the two renames)
becomes the partition's log.

Transient files of other operations (`.deleted`, `.cleaned`, `.swap`, `.tmp`) are never
copied.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.log import fsync_dir

if TYPE_CHECKING:
    from storage.log import PartitionLog

FUTURE_DIR_SUFFIX = "-future"
_TRANSIENT_SUFFIXES = (".deleted", ".cleaned", ".swap", ".tmp")
_SEGMENT_FILE = re.compile(r"(\d{20})\.[a-z]+")
_COPY_CHUNK = 1 << 20

Stamp = tuple[int, int, int]  # (inode, size, mtime_ns)


def log_future_dir_name(topic: str, partition: int) -> str:
    """Kafka's `logFutureDirName`: `<topic>-<partition>.<uuid hex>-future`."""
    return f"{topic}-{partition}.{uuid.uuid4().hex}{FUTURE_DIR_SUFFIX}"


def future_dir_name_length(topic: str, partition: int) -> int:
    """The length of the future dir's name, which Kafka refuses past 255 characters."""
    return len(f"{topic}-{partition}.") + 32 + len(FUTURE_DIR_SUFFIX)


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _copy_file(src: str, dst: str) -> tuple[Stamp, int] | None:
    """Copy `src` to `dst` (replacing it) and fsync it. Returns the source's stamp taken
    before the copy and the bytes copied, or None if `src` vanished meanwhile."""
    try:
        fin = open(src, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with fin:
        stamp = _stamp(os.fstat(fin.fileno()))
        copied = 0
        with open(dst, "wb") as fout:
            while chunk := fin.read(_COPY_CHUNK):
                fout.write(chunk)
                copied += len(chunk)
            fout.flush()
            os.fsync(fout.fileno())
    return stamp, copied


@dataclass(eq=False)
class LogMove:
    """One partition's log on its way from `source_dir` to `dest_dir`."""

    topic: str
    partition: int
    log: PartitionLog
    source_dir: str
    dest_dir: str
    future_path: str
    #: Segments with a base offset below this were immutable when the move began.
    immutable_below: int
    #: Source file name -> its stamp when copied.
    copied: dict[str, Stamp] = field(default_factory=dict)
    #: Bytes in the future dir so far (what DescribeLogDirs reports for the future replica).
    size: int = 0

    def _wanted(self, name: str) -> bool:
        return not name.endswith(_TRANSIENT_SUFFIXES)

    def copy_bulk(self) -> None:
        """Phase 1: copy the files of the segments that were immutable at the roll.
        Blocking; safe to run while the log is appended to. `OSError` if a copy fails."""
        os.makedirs(self.future_path, exist_ok=True)
        for name in sorted(os.listdir(self.log.dir)):
            match = _SEGMENT_FILE.fullmatch(name)
            if not self._wanted(name) or match is None:
                continue
            if int(match.group(1)) >= self.immutable_below:
                continue
            done = _copy_file(os.path.join(self.log.dir, name),
                              os.path.join(self.future_path, name))
            if done is not None:
                self.copied[name] = done[0]
                self.size += done[1]

    def copy_rest(self) -> None:
        """Phase 2, with the log closed: copy what is new or changed since phase 1, drop
        copies of files that are gone, fsync the future dir."""
        present = {name for name in os.listdir(self.log.dir)
                   if self._wanted(name) and os.path.isfile(os.path.join(self.log.dir, name))}
        for name in sorted(present):
            src = os.path.join(self.log.dir, name)
            stamp = self.copied.get(name)
            if stamp is not None and stamp == _stamp(os.stat(src)):
                continue
            done = _copy_file(src, os.path.join(self.future_path, name))
            if done is not None:
                self.copied[name] = done[0]
        for name in set(os.listdir(self.future_path)) - present:
            os.unlink(os.path.join(self.future_path, name))
            self.copied.pop(name, None)
        fsync_dir(self.future_path)
        fsync_dir(self.dest_dir)

    def discard(self) -> None:
        """Remove the future dir (a move that failed or was abandoned)."""
        shutil.rmtree(self.future_path, ignore_errors=True)
        fsync_dir(self.dest_dir)
