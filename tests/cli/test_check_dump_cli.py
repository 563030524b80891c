"""`odradek check` and `odradek dump-log`: what a running broker serves, and segment files
written by a running broker, read the way Kafka's DumpLogSegments reads them (compared
line by line with Kafka 4.4's own tool when java and its jars are present)."""

from __future__ import annotations

import os
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from broker.handlers import load_all
from protocol.errors import ProtocolError
from protocol.messages import REQUESTS
from protocol.records import iter_batches
from storage.producer_state import BatchMetadata, ProducerStateEntry, write_snapshot
from tests.cli.conftest import REPO, cli, odradek
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

APACHE_KAFKA = REPO / "compat" / "apache-kafka"


async def test_check_names_every_api_the_broker_serves(broker: RunningBroker) -> None:
    checked = await cli(broker, "check")
    assert checked.exit_code == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0] == (f"Broker {broker.bootstrap} answers: cluster "
                        f"{broker.broker.cluster_id}, controller 1")
    start = lines.index(next(line for line in lines if line.split()[:2] == ["KEY", "API"]))
    rows = {}
    for line in lines[start + 1:]:
        parts = line.split()
        if len(parts) == 5 and parts[0].isdigit():
            rows[int(parts[0])] = parts[1:4]
    expected = {key: [REQUESTS[key].__name__.removesuffix("Request"), str(reg.min_version),
                      str(reg.max_version)] for key, reg in load_all().items()}
    assert rows == expected


async def test_check_as_a_process_against_nothing() -> None:
    result = await odradek("check", "--bootstrap-server", "127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("Error: cannot connect to 127.0.0.1:1")


def segment_dir(broker: RunningBroker, topic: str, partition: int) -> Path:
    log = broker.broker.logs.get_log(topic, partition)
    assert log is not None
    log.flush()
    return Path(log.dir)


async def written_segment(broker: RunningBroker, make_topic: Any) -> Path:
    make_topic("dumped", 1, **{"index.interval.bytes": "100"})
    lines = "".join(f"k{i}\tvalue-{i}\n" for i in range(40))
    for codec in ("none", "gzip"):
        produced = await cli(broker, "produce", "dumped", "--parse-key", "--header", "h=1",
                             "--compression", codec, "--batch-bytes", "300", input=lines)
        assert produced.exit_code == 0, produced.stderr
    return segment_dir(broker, "dumped", 0) / "00000000000000000000.log"


async def test_dump_log_of_a_live_segment(broker: RunningBroker, make_topic: Any) -> None:
    segment = await written_segment(broker, make_topic)
    dumped = await cli(None, "dump-log", str(segment), "--print-data")
    assert dumped.exit_code == 0, dumped.stderr
    out = dumped.stdout.splitlines()
    assert out[:2] == [f"Dumping {segment}", "Log starting offset: 0"]
    batches = [line for line in out if line.startswith("baseOffset: ")]
    records = [line for line in out if line.startswith("| offset: ")]
    assert len(records) == 80 and len(batches) > 4
    assert all(line.endswith("isvalid: true") for line in batches)
    assert {"compresscodec: none", "compresscodec: gzip"} <= {
        " ".join(b.split()[-6:-4]) for b in batches}
    assert records[3].endswith("headerKeys: [h] key: k3 payload: value-3")
    index = segment.with_suffix(".index")
    timeindex = segment.with_suffix(".timeindex")
    assert f"Dumping {index}" in out and f"Dumping {timeindex}" in out
    offsets = [line for line in out if line.startswith("offset: ") and "position" in line]
    assert len(offsets) > 2
    assert any(line.startswith("Found ") and "bytes of zeros (preallocated space of an active "
               "segment)" in line for line in out)
    assert dumped.stderr == ""


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                    reason="Kafka's DumpLogSegments needs a JDK, and Maven to fetch its jars")
async def test_dump_log_prints_what_kafkas_tool_prints(broker: RunningBroker,
                                                       make_topic: Any, tmp_path: Path) -> None:
    import trio

    sys.path.insert(0, str(APACHE_KAFKA))
    from apache_kafka import dump_log_segments

    segment = copy_segment(await written_segment(broker, make_topic), tmp_path / "copy")
    files = [segment, segment.with_suffix(".index"), segment.with_suffix(".timeindex")]
    kafka = await trio.to_thread.run_sync(lambda: dump_log_segments(files))
    ours = await cli(None, "dump-log", *map(str, files), "--print-data", "--no-indexes")
    assert ours.exit_code == 0, ours.stderr
    assert ours.stdout.splitlines() == kafka.splitlines()


def copy_segment(source: Path, into: Path) -> Path:
    """A copy of the segment's files with the `.log` cut to its batches (an active segment
    is preallocated with zeros) and the indexes to their entries, as a roll leaves them."""
    into.mkdir()
    with source.open("rb") as f:
        data = f.read(1 << 20)  # the test writes a few KiB into a 1 GiB sparse file
    end = 0
    try:
        for pos, header in iter_batches(data):
            end = pos + header.size
    except ProtocolError:  # a zero length: the preallocated tail
        pass
    (into / source.name).write_bytes(data[:end])
    for suffix, size in ((".index", 8), (".timeindex", 12)):
        raw = source.with_suffix(suffix).read_bytes()
        entries = [raw[i:i + size] for i in range(0, len(raw), size)]
        kept = entries[:1] + [e for e in entries[1:] if e[-4:] != b"\0\0\0\0"] \
            if suffix == ".timeindex" else entries[:1] + [e for e in entries[1:]
                                                          if e[:4] != b"\0\0\0\0"]
        (into / (source.stem + suffix)).write_bytes(b"".join(kept))
    return into / source.name


async def test_dump_log_finds_damage(broker: RunningBroker, make_topic: Any,
                                     tmp_path: Path) -> None:
    segment = await written_segment(broker, make_topic)

    flipped = copy_segment(segment, tmp_path / "flipped")
    data = bytearray(flipped.read_bytes())
    data[70] ^= 0xFF  # inside the first batch's records: its CRC no longer matches
    flipped.write_bytes(data)
    result = await cli(None, "dump-log", str(flipped), "--no-indexes")
    assert result.exit_code == 1
    first = next(line for line in result.stdout.splitlines() if line.startswith("baseOffset"))
    assert first.endswith("isvalid: false")

    torn = copy_segment(segment, tmp_path / "torn")
    with torn.open("ab") as f:
        f.write(b"\x07" * 30)
    result = await cli(None, "dump-log", str(torn), "--no-indexes")
    assert result.exit_code == 1
    assert f"Found 30 invalid bytes at the end of {torn.name}" in result.stdout

    wrong = copy_segment(segment, tmp_path / "wrong")
    index = wrong.with_suffix(".index")
    raw = bytearray(index.read_bytes())
    relative, position = struct.unpack_from(">ii", raw, 0)
    struct.pack_into(">ii", raw, 0, relative + 1, position)
    index.write_bytes(raw)
    result = await cli(None, "dump-log", str(index), "--verify-index-only")
    assert result.exit_code == 1
    assert f"Mismatches in :{os.path.abspath(index)}" in result.stderr
    assert f"  Index offset: {relative + 1}, log offset: {relative}" in result.stderr
    sane = await cli(None, "dump-log", str(index), "--index-sanity-check")
    assert (sane.exit_code, sane.stdout.splitlines()[-1]) == (0, f"{index} passed sanity check.")


async def test_dump_txn_index_and_producer_snapshot(tmp_path: Path) -> None:
    txn = tmp_path / "00000000000000000000.txnindex"
    txn.write_bytes(struct.pack(">hqqqq", 0, 7, 3, 9, 10) + struct.pack(">hqqqq", 0, 8, 11, 12, 13))
    snapshot = tmp_path / "00000000000000000006.snapshot"
    entry = ProducerStateEntry(7, 0, 3, 1700000000007, None)
    entry.batches.append(BatchMetadata(4, 5, 1, 1700000000006))
    write_snapshot(str(snapshot), [entry])
    result = await cli(None, "dump-log", str(txn), str(snapshot))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Dumping {txn}",
        "version: 0 producerId: 7 firstOffset: 3 lastOffset: 9 lastStableOffset: 10",
        "version: 0 producerId: 8 firstOffset: 11 lastOffset: 12 lastStableOffset: 13",
        f"Dumping {snapshot}",
        "producerId: 7 producerEpoch: 0 coordinatorEpoch: 3 currentTxnFirstOffset: "
        "OptionalLong.empty lastTimestamp: 1700000000007 firstSequence: 3 lastSequence: 4 "
        "lastOffset: 5 offsetDelta: 1 timestamp: 1700000000007"]
