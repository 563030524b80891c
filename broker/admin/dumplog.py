"""Inspect segment files offline, as Kafka's `kafka-dump-log` (DumpLogSegments) does.

How this works
--------------
Files are only ever read (plain reads, or a read-only memory map for `.log`), so a
running broker's files are safe to inspect. Each file is dumped by its suffix, printing
the lines Kafka 4.4's tool prints, so its output can be compared line by line:

- ``.log``: ``Log starting offset: N``, a line per batch (offsets, counts, sequences,
  producer, epoch, flags, position, max timestamp, size, codec, CRC and whether it is
  valid), and with deep iteration (implied by `print_data`) a ``| offset: ...`` line per
  record, with the key and payload as UTF-8 when printing data; control records show
  their end-transaction marker. Bytes after the last whole batch are reported as
  ``Found N invalid bytes at the end of <name>``.
- ``.index``: ``offset: O position: P`` per entry, checking that the batch at P ends at O.
- ``.timeindex``: ``timestamp: T offset: O`` per entry, checking that the batch ending at
  O exists, that its largest record timestamp is T, and that timestamps increase.
- ``.txnindex``: one line per aborted transaction (34-byte entries).
- ``.snapshot``: one line per producer of a producer-state snapshot.

As in Kafka, index dumps stop at the first zero entry after the first (a preallocated
index of an active segment is zero-filled past its last entry); `index_sanity_check` only
runs the checks a broker makes at start-up. Problems found while verifying are printed to
stderr at the end in Kafka's words. `Dumper.problems` counts those that mean a damaged
segment (bad CRC, torn tail, index mismatches, unreadable files); non-consecutive record
offsets are reported but not counted, since compaction makes them normal.

`dump_files` expands a ``.log`` argument to the segment's existing ``.index``,
``.timeindex`` and ``.txnindex`` too (`with_indexes`).
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from protocol.errors import ProtocolError
from protocol.records import (
    BatchHeader,
    Compression,
    Record,
    TimestampType,
    batch_crc_ok,
    iter_batches,
    iter_records,
    parse_control_record,
    read_batch_header,
)
from storage.producer_state import CorruptSnapshot, read_snapshot

__all__ = ["DumpOptions", "Dumper", "dump_files"]

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")
_TXN_ENTRY = struct.Struct(">hqqqq")
_INT_MAX = 2**31 - 1
_ZERO_CHUNK = 4 << 20
_CODEC_NAMES = {Compression.NONE: "none", Compression.GZIP: "gzip",
                Compression.SNAPPY: "snappy", Compression.LZ4: "lz4", Compression.ZSTD: "zstd"}
SUFFIXES = (".log", ".index", ".timeindex", ".txnindex", ".snapshot")
Buffer = bytes | mmap.mmap


@dataclass
class DumpOptions:
    print_data: bool = False
    deep_iteration: bool = False
    verify_index_only: bool = False
    index_sanity_check: bool = False
    skip_record_metadata: bool = False
    max_message_size: int = 5 * 1024 * 1024
    max_bytes: int = _INT_MAX

    @property
    def deep(self) -> bool:
        return self.deep_iteration or self.print_data


def _base_offset(path: str) -> int:
    name = os.path.basename(path)
    try:
        return int(name.split(".")[0])
    except ValueError:
        raise ProtocolError(f"{name} is not named by a base offset") from None


def _sibling(path: str, suffix: str) -> str:
    head = os.path.basename(path).split(".")[0]
    return os.path.join(os.path.dirname(os.path.abspath(path)), head + suffix)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class _LogFile:
    """A read-only view of a `.log` file (empty files cannot be mapped)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        size = os.fstat(self._file.fileno()).st_size
        self.data: bytes | mmap.mmap = (
            mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b"")

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.close()
        self._file.close()

    def zeros_from(self, start: int) -> bool:
        """Whether every byte from `start` on is zero: the preallocated tail of an active
        segment. Holes of a sparse file are skipped with SEEK_DATA/SEEK_HOLE, so a 1 GiB
        mostly-unwritten segment is checked without reading it."""
        end = len(self.data)
        fd = self._file.fileno()
        pos = start
        while pos < end:
            try:
                data_at = os.lseek(fd, pos, os.SEEK_DATA)
                stop = min(os.lseek(fd, data_at, os.SEEK_HOLE), end)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only holes from `pos` on
                    return True
                data_at, stop = pos, end  # no SEEK_DATA here: read everything
            pos = data_at
            while pos < stop:
                chunk = self.data[pos:min(stop, pos + _ZERO_CHUNK)]
                if chunk.count(0) != len(chunk):
                    return False
                pos += len(chunk)
        return True


@dataclass
class Dumper:
    """Dumps files one by one through `out`; `report` prints what verification found."""

    options: DumpOptions
    out: Callable[[str], None]
    err: Callable[[str], None]
    problems: int = 0
    _index_mismatches: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _non_consecutive: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _ts_mismatch: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _ts_out_of_order: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _ts_not_found: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def dump(self, path: str) -> None:
        self.out(f"Dumping {path}")
        suffix = os.path.splitext(path)[1]
        try:
            if suffix == ".log":
                self._dump_log(path)
            elif suffix == ".index":
                self._dump_index(path)
            elif suffix == ".timeindex":
                self._dump_time_index(path)
            elif suffix == ".txnindex":
                self._dump_txn_index(path)
            elif suffix == ".snapshot":
                self._dump_snapshot(path)
            else:
                self.err(f"Ignoring unknown file {path}")
        except (OSError, ProtocolError) as exc:
            self.problems += 1
            self.err(f"{path}: {exc}")

    # -- .log -----------------------------------------------------------------------------

    def _dump_log(self, path: str) -> None:
        opts = self.options
        self.out(f"Log starting offset: {_base_offset(path)}")
        log = _LogFile(path)
        try:
            limit = min(len(log.data), opts.max_bytes)
            data = log.data if limit == len(log.data) else log.data[:limit]
            valid = 0
            last_offset = -1
            pairs: list[tuple[int, int]] = []
            failure: ProtocolError | None = None
            try:
                for pos, header in iter_batches(data):
                    valid = self._print_batch(data, pos, header, valid)
                    if opts.deep:
                        last_offset = self._print_records(data, pos, header, last_offset, pairs)
            except ProtocolError as exc:
                failure = exc
            if pairs:
                self._non_consecutive[os.path.abspath(path)] = pairs
            trailing = len(log.data) - valid
            name = os.path.basename(path)
            if trailing > 0 and opts.max_bytes == _INT_MAX and log.zeros_from(valid):
                self.out(f"Found {trailing} bytes of zeros (preallocated space of an active "
                         f"segment) at the end of {name}")
            elif failure is not None:
                self.problems += 1
                self.err(f"{path}: {failure}")
                if opts.max_bytes == _INT_MAX:
                    self.out(f"Found {trailing} invalid bytes at the end of {name}")
            elif trailing > 0 and opts.max_bytes == _INT_MAX:
                self.problems += 1
                self.out(f"Found {trailing} invalid bytes at the end of {name}")
        finally:
            log.close()

    def _print_batch(self, data: Buffer, pos: int, h: BatchHeader, valid: int) -> int:
        ok = batch_crc_ok(data, pos, h)
        if not ok:
            self.problems += 1
        horizon = (f"OptionalLong[{h.base_timestamp}]" if h.has_delete_horizon
                   else "OptionalLong.empty")
        try:
            codec = _CODEC_NAMES[h.compression]
        except ProtocolError:
            codec = f"unknown({h.attributes & 7})"
        self.out(
            f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} "
            f"count: {h.records_count} baseSequence: {h.base_sequence} "
            f"lastSequence: {h.last_sequence} producerId: {h.producer_id} "
            f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
            f"isTransactional: {_b(h.is_transactional)} isControl: {_b(h.is_control)} "
            f"deleteHorizonMs: {horizon} position: {valid} "
            f"{_timestamp_type(h.timestamp_type)}: {h.max_timestamp} "
            f"size: {h.size} magic: {h.magic} compresscodec: {codec} "
            f"crc: {h.crc} isvalid: {_b(ok)}")
        return valid + h.size

    def _print_records(self, data: Buffer, pos: int, h: BatchHeader, last_offset: int,
                       pairs: list[tuple[int, int]]) -> int:
        opts = self.options
        ts_type = _timestamp_type(h.timestamp_type)
        for record in iter_records(data, pos, h):
            if last_offset != -1 and record.offset != last_offset + 1:
                pairs.insert(0, (last_offset, record.offset))
            last_offset = record.offset
            line = ""
            prefix = "| "
            if not opts.skip_record_metadata:
                sequence = -1 if h.base_sequence < 0 else (
                    (h.base_sequence + record.offset - h.base_offset) % (_INT_MAX + 1))
                line += (f"{prefix}offset: {record.offset} {ts_type}: {record.timestamp} "
                         f"keySize: {_size(record.key)} valueSize: {_size(record.value)} "
                         f"sequence: {sequence} "
                         f"headerKeys: [{','.join(x.key for x in record.headers)}]")
                prefix = " "
                if h.is_control:
                    line += _control_text(record)
            if opts.print_data and not h.is_control:
                if record.key is not None:
                    line += f"{prefix}key: {_utf8(record.key)}"
                    prefix = " "
                if record.value is not None:
                    line += f" payload: {_utf8(record.value)}"
            self.out(line)
        return last_offset

    # -- .index / .timeindex -----------------------------------------------------------------

    def _offset_entries(self, path: str) -> tuple[int, list[tuple[int, int]]]:
        data = _read(path)
        base = _base_offset(path)
        entries = [(base + rel, pos) for rel, pos in
                   (_OFFSET_ENTRY.unpack_from(data, i * 8) for i in range(len(data) // 8))]
        return len(data), entries

    def _dump_index(self, path: str) -> None:
        opts = self.options
        base = _base_offset(path)
        length, entries = self._offset_entries(path)
        if not entries:
            self.out(f"{path} is empty.")
            return
        if opts.index_sanity_check:
            if entries[-1][0] < base:
                raise ProtocolError(f"Corrupt index found, index file ({path}) has non-zero "
                                    f"size but the last offset is {entries[-1][0]} which is "
                                    f"less than the base offset {base}.")
            if length % 8:
                raise ProtocolError(f"Index file {path} is corrupt, found {length} bytes "
                                    "which is neither positive nor a multiple of 8.")
            self.out(f"{path} passed sanity check.")
            return
        log = _LogFile(_sibling(path, ".log"))
        mismatches: list[tuple[int, int]] = []
        try:
            for i, (offset, position) in enumerate(entries):
                if offset == base and i > 0:
                    break
                window = log.data[position:position + opts.max_message_size]
                try:
                    batch_last = read_batch_header(window).last_offset
                except ProtocolError:
                    batch_last = -1
                if batch_last != offset:
                    mismatches.insert(0, (offset, batch_last))
                if not opts.verify_index_only:
                    self.out(f"offset: {offset} position: {position}")
        finally:
            log.close()
        if mismatches:
            self.problems += len(mismatches)
            self._index_mismatches[os.path.abspath(path)] = mismatches

    def _dump_time_index(self, path: str) -> None:
        opts = self.options
        base = _base_offset(path)
        data = _read(path)
        entries = [(ts, base + rel) for ts, rel in
                   (_TIME_ENTRY.unpack_from(data, i * 12) for i in range(len(data) // 12))]
        if opts.index_sanity_check:
            if entries and entries[-1][0] < entries[0][0]:
                raise ProtocolError(f"Corrupt time index found, time index file ({path}) has "
                                    f"non-zero size but the last timestamp is {entries[-1][0]} "
                                    f"which is less than the first timestamp {entries[0][0]}")
            if entries and entries[-1][1] < base:
                raise ProtocolError(f"Corrupt time index found, time index file ({path}) has "
                                    f"non-zero size but the last offset is {entries[-1][1]} "
                                    f"which is less than the first offset {base}")
            if len(data) % 12:
                raise ProtocolError(f"Time index file {path} is corrupt, found {len(data)} "
                                    "bytes which is neither positive nor a multiple of 12.")
            self.out(f"{path} passed sanity check.")
            return
        index_path = _sibling(path, ".index")
        offsets = self._offset_entries(index_path)[1] if os.path.exists(index_path) else []
        log = _LogFile(_sibling(path, ".log"))
        key = os.path.abspath(path)
        prev = -1
        try:
            for i, (timestamp, offset) in enumerate(entries):
                if offset == base and i > 0:
                    break
                position = _index_lookup(offsets, base, offset)
                found = None
                for pos, header in iter_batches(log.data, position):
                    if header.last_offset >= offset:
                        found = (pos, header)
                        break
                if found is None:
                    self._ts_not_found.setdefault(key, []).append((offset, -1))
                elif found[1].last_offset != offset:
                    self._ts_not_found.setdefault(key, []).append((offset, found[1].last_offset))
                else:
                    pos, header = found
                    max_ts = max((r.timestamp for r in iter_records(log.data, pos, header)),
                                 default=-1)
                    if max_ts != timestamp:
                        self._ts_mismatch.setdefault(key, []).append((timestamp, max_ts))
                    if prev >= timestamp:
                        self._ts_out_of_order.setdefault(key, []).append((timestamp, prev))
                if not opts.verify_index_only:
                    self.out(f"timestamp: {timestamp} offset: {offset}")
                prev = timestamp
        finally:
            log.close()
        self.problems += sum(len(errors.get(key, [])) for errors in
                             (self._ts_not_found, self._ts_mismatch, self._ts_out_of_order))

    # -- .txnindex / .snapshot --------------------------------------------------------------

    def _dump_txn_index(self, path: str) -> None:
        data = _read(path)
        size = _TXN_ENTRY.size
        for i in range(len(data) // size):
            version, pid, first, last, lso = _TXN_ENTRY.unpack_from(data, i * size)
            if version != 0:
                raise ProtocolError(f"Unexpected aborted transaction version {version} in "
                                    f"transaction index {path}, current version is 0")
            self.out(f"version: {version} producerId: {pid} firstOffset: {first} "
                     f"lastOffset: {last} lastStableOffset: {lso}")
        if len(data) % size:
            raise ProtocolError(f"Unexpected end of transaction index {path}: "
                                f"{len(data) % size} bytes past the last entry")

    def _dump_snapshot(self, path: str) -> None:
        try:
            entries = read_snapshot(path)
        except CorruptSnapshot as exc:
            self.problems += 1
            self.err(str(exc))
            return
        for e in entries:
            txn = ("OptionalLong.empty" if e.current_txn_first_offset is None
                   else f"OptionalLong[{e.current_txn_first_offset}]")
            line = (f"producerId: {e.producer_id} producerEpoch: {e.producer_epoch} "
                    f"coordinatorEpoch: {e.coordinator_epoch} currentTxnFirstOffset: {txn} "
                    f"lastTimestamp: {e.last_timestamp} ")
            if e.batches:
                b = e.batches[0]
                line += (f"firstSequence: {b.first_seq} lastSequence: {b.last_seq} "
                         f"lastOffset: {b.last_offset} offsetDelta: {b.offset_delta} "
                         f"timestamp: {b.timestamp}")
            self.out(line)

    # -- the summary on stderr ----------------------------------------------------------------

    def report(self) -> None:
        for name, pairs in self._index_mismatches.items():
            self.err(f"Mismatches in :{name}")
            for index_offset, log_offset in pairs:
                self.err(f"  Index offset: {index_offset}, log offset: {log_offset}")
        for name, pairs in self._ts_mismatch.items():
            self.err(f"Found timestamp mismatch in :{name}")
            for index_ts, log_ts in pairs:
                self.err(f"  Index timestamp: {index_ts}, log timestamp: {log_ts}")
        for name, pairs in self._ts_out_of_order.items():
            self.err(f"Found out of order timestamp in :{name}")
            for index_ts, prev in pairs:
                self.err(f"  Index timestamp: {index_ts}, Previously indexed timestamp: {prev}")
        for pairs in self._ts_not_found.values():
            self.err("The following indexed offsets are not found in the log.")
            for indexed, found in pairs:
                self.err(f"Indexed offset: {indexed}, found log offset: {found}")
        for name, pairs in self._non_consecutive.items():
            self.err(f"Non-consecutive offsets in {name}")
            for first, second in pairs:
                self.err(f"  {first} is followed by {second}")


def _b(value: bool) -> str:
    return "true" if value else "false"


def _size(data: bytes | None) -> int:
    return -1 if data is None else len(data)


def _utf8(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _timestamp_type(value: TimestampType) -> str:
    return "LogAppendTime" if value == TimestampType.LOG_APPEND_TIME else "CreateTime"


def _index_lookup(entries: list[tuple[int, int]], base: int, target: int) -> int:
    """The position of the last index entry with an offset <= `target` (0 if none), reading
    entries up to the first zero entry after the first."""
    position = 0
    for i, (offset, entry_position) in enumerate(entries):
        if (offset == base and i > 0) or offset > target:
            break
        position = entry_position
    return position


def _control_text(record: Record) -> str:
    try:
        ctype, epoch = parse_control_record(record)
    except ProtocolError:
        key = record.key or b""
        type_id = int.from_bytes(key[2:4], "big", signed=True) if len(key) >= 4 else -1
        return f" controlType: UNKNOWN({type_id})"
    return f" endTxnMarker: {ctype.name} coordinatorEpoch: {epoch}"


def dump_files(paths: list[str], options: DumpOptions, out: Callable[[str], None],
               err: Callable[[str], None], *, with_indexes: bool = True) -> int:
    """Dump each file (a `.log` with its index files when `with_indexes`); returns the
    number of problems found."""
    files: list[str] = []
    for path in paths:
        files.append(path)
        if with_indexes and path.endswith(".log"):
            stem = path[: -len(".log")]
            files += [stem + s for s in (".index", ".timeindex", ".txnindex")
                      if os.path.exists(stem + s) and stem + s not in paths]
    dumper = Dumper(options, out, err)
    for path in files:
        if not os.path.exists(path):
            dumper.problems += 1
            err(f"{path}: no such file")
            continue
        dumper.dump(path)
    dumper.report()
    return dumper.problems
