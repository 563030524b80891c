"""Apache Kafka's own DumpLogSegments reads the segments, indexes and time indexes we write.

Kafka 4.4's jars come from Maven Central (compat/apache-kafka/fetch.sh, cached after the
first run). This test needs a JDK and Maven, which the project's machines have.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from protocol.records import Compression, Header, Record, build_batch
from storage import LogConfig, PartitionLog

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "apache-kafka"))
from apache_kafka import dump_log_segments  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("mvn") is None,
    reason="Kafka's DumpLogSegments needs a JDK and Maven on the machine",
)

CODECS = [Compression.NONE, Compression.GZIP, Compression.SNAPPY, Compression.LZ4,
          Compression.ZSTD]
BASE_TS = 1_700_000_000_000


def _write_log(directory: Path) -> tuple[PartitionLog, list[tuple[int, bytes, bytes, int]]]:
    config = LogConfig(segment_bytes=1 << 20, index_interval_bytes=64)
    log = PartitionLog.open(str(directory), config)
    expected = []
    offset = 0
    for i, codec in enumerate(CODECS * 2):
        records = []
        for j in range(4):
            key, value = f"key-{i}-{j}".encode(), f"value-{i}-{j}".encode() * (j + 1)
            ts = BASE_TS + i * 10 + j
            records.append(Record(offset=offset + j, timestamp=ts, key=key, value=value,
                                  headers=[Header("h", b"x")]))
            expected.append((offset + j, key, value, ts))
        log.append(build_batch(records, base_offset=offset, compression=codec))
        offset += 4
    return log, expected


def test_dump_log_segments_reads_our_segment_and_indexes(tmp_path) -> None:
    directory = tmp_path / "topic-0"
    log, expected = _write_log(directory)
    log.roll()
    log.close()
    segment = directory / f"{0:020d}.log"
    out = dump_log_segments([segment, segment.with_suffix(".index"),
                             segment.with_suffix(".timeindex")])

    batches = re.findall(
        r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) .*? compresscodec: (\w+) "
        r"crc: \d+ isvalid: (\w+)", out)
    assert [(int(b), int(e), int(c)) for b, e, c, _, _ in batches] == [
        (i * 4, i * 4 + 3, 4) for i in range(10)]
    assert [codec for _, _, _, codec, _ in batches] == [
        c.name.lower() for c in CODECS * 2]
    assert all(valid == "true" for *_, valid in batches)

    records = re.findall(
        r"\| offset: (\d+) CreateTime: (\d+) keySize: \d+ valueSize: \d+ sequence: -1 "
        r"headerKeys: \[h\] key: (\S+) payload: (\S+)", out)
    assert [(int(o), k.encode(), v.encode(), int(t)) for o, t, k, v in records] == expected

    index_part = out.split(".index")[1].split("Dumping")[0]
    entries = [(int(o), int(p)) for o, p in re.findall(r"offset: (\d+) position: (\d+)",
                                                        index_part)]
    assert entries, "index_interval_bytes=64 must have produced index entries"
    positions = {int(b): int(p) for b, p in re.findall(
        r"baseOffset: (\d+) .*? position: (\d+) CreateTime", out)}
    for offset, position in entries:
        # Each entry points at the batch that holds `offset` (its last offset, as Kafka does).
        assert positions[offset - 3] == position

    time_part = out.split(".timeindex")[1]
    time_entries = re.findall(r"timestamp: (\d+) offset: (\d+)", time_part)
    assert time_entries
    assert all(int(ts) == BASE_TS + (int(off) // 4) * 10 + int(off) % 4
               for ts, off in time_entries)
    assert "Mismatches" not in out and "not match" not in out


def test_dump_log_segments_verifies_our_indexes(tmp_path) -> None:
    directory = tmp_path / "topic-0"
    log, _ = _write_log(directory)
    log.roll()
    log.close()
    segment = directory / f"{0:020d}.log"
    out = dump_log_segments([segment.with_suffix(".index"), segment.with_suffix(".timeindex")],
                            "--verify-index-only", deep=False, print_data=False)
    assert "Mismatches" not in out and "not match" not in out
    assert "Found timestamp mismatch" not in out and "Found out of order" not in out
