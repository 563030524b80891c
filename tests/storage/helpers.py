"""Test helpers: batch builders, a fake clock, and an independent reader of Kafka's on-disk
format written from the format description (not from storage/ or protocol/)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from protocol.records import Compression, build_batch

BASE_TS = 1_700_000_000_000


class FakeClock:
    def __init__(self, now: int = BASE_TS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def batch(
    n: int = 1,
    *,
    value_size: int = 10,
    ts: int | None = BASE_TS,
    key: bytes | None = b"k",
    compression: Compression = Compression.NONE,
    timestamps: list[int] | None = None,
) -> bytes:
    """A client-style batch (baseOffset 0) of `n` records."""
    recs = []
    for i in range(n):
        t = timestamps[i] if timestamps is not None else ts
        recs.append((key, bytes([65 + i % 26]) * value_size, None, t))
    return build_batch(recs, compression=compression)


# ---------------------------------------------------------------- independent format reader


@dataclass
class DiskBatch:
    position: int
    base_offset: int
    length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    records_count: int

    @property
    def size(self) -> int:
        return self.length + 12

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


def crc32c_ref(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected poly 0x82F63B78): slow, independent."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def parse_log_file(data: bytes, check_crc: bool = False) -> list[DiskBatch]:
    """Batches of a `.log` file per Kafka's RecordBatch layout; asserts it parses fully."""
    out = []
    pos = 0
    while pos < len(data):
        base, length, ple, magic, crc, attrs, lod, first_ts, max_ts, _pid, _pe, _seq, count = (
            struct.unpack_from(">qiibIhiqqqhii", data, pos)
        )
        assert magic == 2, f"magic {magic} at {pos}"
        assert length >= 49 and pos + 12 + length <= len(data), f"bad length at {pos}"
        if check_crc:
            assert crc32c_ref(data[pos + 21 : pos + 12 + length]) == crc, f"bad crc at {pos}"
        out.append(
            DiskBatch(pos, base, length, ple, magic, crc, attrs, lod, first_ts, max_ts, count)
        )
        pos += 12 + length
    return out


def parse_offset_index(data: bytes, base_offset: int) -> list[tuple[int, int]]:
    assert len(data) % 8 == 0
    return [(base_offset + rel, pos) for rel, pos in struct.iter_unpack(">ii", data)]


def parse_time_index(data: bytes, base_offset: int) -> list[tuple[int, int]]:
    assert len(data) % 12 == 0
    return [(ts, base_offset + rel) for ts, rel in struct.iter_unpack(">qi", data)]


def read_file(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def segment_files(dir: str | os.PathLike[str]) -> list[str]:
    return sorted(n for n in os.listdir(dir) if n.endswith((".log", ".index", ".timeindex")))


def check_partition_dir(dir: str | os.PathLike[str]) -> list[DiskBatch]:
    """Read a closed partition dir the way Kafka's tools would: every segment parses,
    offsets increase across segments, each segment's name is its first offset or lower,
    every index entry points at a batch boundary holding that offset."""
    all_batches: list[DiskBatch] = []
    logs = sorted(n for n in os.listdir(dir) if n.endswith(".log"))
    for name in logs:
        base = int(name[:20])
        assert name == f"{base:020d}.log"
        data = read_file(os.path.join(dir, name))
        batches = parse_log_file(data, check_crc=False)
        starts = {b.position: b for b in batches}
        for b in batches:
            assert b.base_offset >= base
        idx_path = os.path.join(dir, f"{base:020d}.index")
        if os.path.exists(idx_path):
            for off, pos in parse_offset_index(read_file(idx_path), base):
                assert pos in starts, f"index entry ({off}, {pos}) not at a batch start"
                assert starts[pos].base_offset <= off
        tidx_path = os.path.join(dir, f"{base:020d}.timeindex")
        if os.path.exists(tidx_path):
            entries = parse_time_index(read_file(tidx_path), base)
            assert [e[0] for e in entries] == sorted(e[0] for e in entries)
        all_batches.extend(batches)
    for a, b in zip(all_batches, all_batches[1:], strict=False):
        assert b.base_offset > a.last_offset
    return all_batches
