"""The broker's lifecycle as a real process, and its idle-connection timer.

Process tests run `python -m broker serve` on a free port with its own log dir:
- SIGTERM: the process exits 0 promptly, each log dir gets Kafka's clean-shutdown marker
  (`.kafka_cleanshutdown`) and a recovery-point checkpoint at the log end, and the next
  start loads without a recovery scan and serves every acknowledged record.
- SIGKILL while confluent-kafka produces with acks=1: after a restart every record whose
  delivery was acknowledged is there, in order, and the log has no torn tail (every batch
  whole, CRC valid, read with `protocol.records`).
- A hand-made torn tail (part of a batch, or garbage, written after the real end of the
  active segment after a SIGKILL) is cut off by recovery, and nothing else is.

Idle connections (`connections.max.idle.ms`), as Apache Kafka 4.4 does it: the timer
counts from the connection's last socket I/O (`Selector`'s `IdleExpiryManager` is updated
for each ready key), so a connection whose request sits in a long poll longer than the
idle time is closed too, before its answer; the request itself is still carried out.
Checked against Kafka 4.4 with `connections.max.idle.ms=300`: an idle connection closed
after ~0.30 s, and one waiting on a Fetch with `max_wait_ms=3000` closed after ~0.30 s with
no response. These tests run on trio's autojump clock, so they wait for no real time and
the order of the two timers is exact.
"""

from __future__ import annotations

import logging
import mmap
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from protocol.errors import ErrorCode
from protocol.messages.api_versions_request import ApiVersionsRequest
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.records import batch_crc_ok, iter_batches, iter_records
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
API_VERSIONS = 18
FETCH = 1
IDLE_MS = 300


# ------------------------------------------------------------------------ idle connections


@pytest.fixture
def broker_config(tmp_path: Path) -> dict[str, Any]:
    return {"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path / "data"),
            "connections.max.idle.ms": str(IDLE_MS)}


def api_versions() -> ApiVersionsRequest:
    return ApiVersionsRequest(client_software_name="odradek-tests", client_software_version="1")


async def closed_by_broker(wire: WireClient) -> bytes:
    """Wait for the broker to close the connection; whatever it sent first is returned."""
    got = b""
    while True:
        try:
            data = await wire._stream.receive_some(1 << 16)
        except trio.BrokenResourceError:  # a reset is a close too
            return got
        if not data:
            return got
        got += data


def idle_closes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "odradek.connection" and "idle" in r.getMessage()]


async def test_an_idle_connection_is_closed(broker: RunningBroker, autojump_clock: Any,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="odradek.connection")
    wire = await WireClient.connect(broker.host, broker.port)
    assert (await wire.request(API_VERSIONS, 3, api_versions())).error_code == ErrorCode.NONE
    started = trio.current_time()
    assert await closed_by_broker(wire) == b""
    # Virtual time: closed when connections.max.idle.ms had passed, not before.
    assert trio.current_time() - started >= IDLE_MS / 1000
    [line] = idle_closes(caplog)
    assert f"idle_ms={IDLE_MS}" in line
    await wire.aclose()


async def test_requests_keep_a_connection_open(broker: RunningBroker,
                                               autojump_clock: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="odradek.connection")
    wire = await WireClient.connect(broker.host, broker.port)
    # A request every 2/3 of the idle time, for ten idle periods: never idle long enough.
    for _ in range(15):
        await trio.sleep(IDLE_MS / 1000 * 2 / 3)
        assert (await wire.request(API_VERSIONS, 3, api_versions())).error_code == 0
    assert idle_closes(caplog) == []
    # Then silence: closed.
    assert await closed_by_broker(wire) == b""
    assert len(idle_closes(caplog)) == 1
    await wire.aclose()


async def test_a_long_poll_longer_than_the_idle_time_is_closed_unanswered(
        broker: RunningBroker, autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Kafka 4.4 closes a connection whose Fetch waits longer than connections.max.idle.ms:
    no I/O happened on it for that long. The answer (due at max_wait_ms) is never sent."""
    caplog.set_level(logging.INFO, logger="odradek.connection")
    broker.broker.topics.create("t", 1)
    wire = await WireClient.connect(broker.host, broker.port)
    await wire.send(FETCH, 12, FetchRequest(
        max_wait_ms=60_000, min_bytes=1,
        topics=[FetchTopic(topic="t", partitions=[
            FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])]))
    sent = trio.current_time()
    # Were the broker to answer instead, the answer's bytes would come back here.
    assert await closed_by_broker(wire) == b""
    assert IDLE_MS / 1000 <= trio.current_time() - sent < 60
    assert len(idle_closes(caplog)) == 1
    await wire.aclose()
    # The broker keeps serving others, and still carries out the closed connection's
    # request: the parked fetch ends when it is woken.
    other = await WireClient.connect(broker.host, broker.port)
    assert (await other.request(API_VERSIONS, 3, api_versions())).error_code == 0
    await other.aclose()


# ---------------------------------------------------------------------- the broker process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokerProcess:
    """`python -m broker serve` on a free port, its log in `<data>.log<n>`."""

    runs = 0

    def __init__(self, data: Path, *overrides: str) -> None:
        self.data = data
        self.port = free_port()
        BrokerProcess.runs += 1
        self.log_path = data.with_name(f"{data.name}.log{BrokerProcess.runs}")
        args = [sys.executable, "-m", "broker", "serve",
                "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "--override", f"log.dirs={data}"]
        for override in overrides:
            args += ["--override", override]
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def started(self) -> BrokerProcess:
        """Wait (bounded) until the broker logs that it listens."""
        with trio.fail_after(60):
            while "listening name=PLAINTEXT" not in self.log_text():
                assert self.proc.poll() is None, self.log_text()
                await trio.sleep(0.05)
        return self

    async def exit_code(self) -> int:
        return await trio.to_thread.run_sync(self.proc.wait, 60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)


@pytest.fixture
def processes() -> Iterator[list[BrokerProcess]]:
    """Broker processes a test starts; any still running at the end are killed."""
    started: list[BrokerProcess] = []
    yield started
    for process in started:
        process.kill()


async def start(processes: list[BrokerProcess], data: Path, *overrides: str) -> BrokerProcess:
    process = BrokerProcess(data, *overrides)
    processes.append(process)
    return await process.started()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def kafka_python_produce(bootstrap: str, topic: str, values: list[bytes]
                         ) -> list[tuple[int, int]]:
    """Produce with kafka-python's defaults (acks=all, idempotent); (partition, offset)
    of each acknowledged record."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=30000)
    try:
        futures = [producer.send(topic, key=b"%d" % (i % 7), value=v)
                   for i, v in enumerate(values)]
        producer.flush(30)
        return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close(10)


def confluent_consume_all(bootstrap: str, topic: str, partitions: int
                          ) -> dict[Any, list[tuple[Any, Any]]]:
    """Every record of each partition, from the log start to the high watermark:
    {partition: [(offset, value)]}, read with assign() (no groups)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-process",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: dict[Any, list[tuple[Any, Any]]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 60
        while any(len(got[p]) < ends[p] for p in got) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got[msg.partition()].append((msg.offset(), msg.value()))
        return got
    finally:
        consumer.close()


def segment_files(data: Path, topic: str, partition: int) -> list[Path]:
    return sorted((data / f"{topic}-{partition}").glob("*.log"))


def whole_batches(buf: Any) -> int:
    """The end of the valid batches from the start of a segment: each batch whole, magic 2,
    CRC good; a zero length (the sparse tail of an active segment) ends the data."""
    pos = 0
    while len(buf) - pos >= 12 + 49:
        length = struct.unpack_from(">i", buf, pos + 8)[0]
        if length < 49 or len(buf) - pos < 12 + length:
            break
        [(_, header)] = list(iter_batches(bytes(buf[pos:pos + 12 + length])))
        if header.magic != 2 or not batch_crc_ok(buf, pos, header):
            break
        pos += 12 + length
    return pos


def check_clean_log(data: Path, topic: str, partition: int) -> list[bytes]:
    """After a clean stop: every segment is exactly a run of whole, CRC-valid batches with
    contiguous offsets. Returns the record values, in offset order."""
    values: list[bytes] = []
    next_offset = None
    for path in segment_files(data, topic, partition):
        buf = path.read_bytes()
        assert whole_batches(buf) == len(buf), f"{path}: torn or corrupt tail"
        for pos, header in iter_batches(buf):
            assert next_offset is None or header.base_offset == next_offset
            next_offset = header.base_offset + header.last_offset_delta + 1
            values += [r.value or b"" for r in iter_records(buf, pos, header)]
    return values


async def test_sigterm_exits_cleanly_and_a_restart_serves_everything(
        tmp_path: Path, processes: list[BrokerProcess]) -> None:
    from broker.config import BrokerConfig
    from storage import LogManager
    from storage.manager import (
        CLEAN_SHUTDOWN_FILE_NAME,
        RECOVERY_POINT_CHECKPOINT_FILE,
        read_offset_checkpoint,
    )

    data = tmp_path / "data"
    first = await start(processes, data)
    await trio.to_thread.run_sync(create_topic, first.bootstrap, "life", 2)
    values = [b"value-%05d" % i for i in range(600)]
    acked = await trio.to_thread.run_sync(kafka_python_produce, first.bootstrap, "life", values)

    first.proc.send_signal(signal.SIGTERM)
    assert await first.exit_code() == 0, first.log_text()
    text = first.log_text()
    assert "stopping signal=SIGTERM" in text and "logs closed cleanly" in text
    assert "stopped cleanly" in text and "Traceback" not in text
    marker = data / CLEAN_SHUTDOWN_FILE_NAME
    assert marker.read_text() == '{"version":"0","broker_epoch":"-1"}'
    # Every partition's recovery point is its log end: nothing left to recover.
    ends = {p: sum(1 for q, _ in acked if q == p) for p in range(2)}
    checkpoint = read_offset_checkpoint(str(data / RECOVERY_POINT_CHECKPOINT_FILE))
    assert {tp.partition: offset for tp, offset in checkpoint.items()
            if tp.topic == "life"} == ends
    for p in range(2):
        assert check_clean_log(data, "life", p) == [
            values[i] for i, (q, _) in enumerate(acked) if q == p]

    # Loading the dir as the broker does: the marker says clean, so no segment is
    # rescanned and no index rebuilt. (Closing it writes the marker again.)
    node_id = BrokerConfig({"log.dirs": str(data)})["node.id"]
    manager = LogManager([data], node_id=node_id)
    try:
        assert manager.had_clean_shutdown[str(data)] is True
        logs = [log for _, log in manager.all_logs()]
        assert len(logs) == 2
        assert all(log.recovered_truncated_bytes == 0 and log.index_rebuilds == []
                   for log in logs)
        assert sorted(log.log_end_offset for log in logs) == sorted(ends.values())
    finally:
        manager.shutdown()

    second = await start(processes, data)
    assert not marker.exists()  # removed at start: a crash from now on means recovery
    got = await trio.to_thread.run_sync(confluent_consume_all, second.bootstrap, "life", 2)
    for p in range(2):
        assert got[p] == [(offset, values[i]) for i, (q, offset) in enumerate(acked) if q == p]
    second.proc.send_signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.log_text()
    assert marker.exists()


def confluent_produce_until_stopped(bootstrap: str, topic: str, stop: threading.Event,
                                    acked: list[tuple[int, bytes]]) -> int:
    """Produce numbered records with acks=1 until `stop`; `acked` gets (offset, value) of
    each acknowledged delivery as it arrives. Returns how many were sent."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 2,
                         "message.timeout.ms": 5000, "retries": 0,
                         "max.in.flight.requests.per.connection": 1})

    def delivered(err: Any, msg: Any) -> None:
        if err is None:
            acked.append((msg.offset(), msg.value()))

    sent = 0
    try:
        while not stop.is_set():
            try:
                producer.produce(topic, value=b"%08d:" % sent + b"r" * 300, on_delivery=delivered)
                sent += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
        producer.purge()
        producer.flush(10)
    finally:
        producer.flush(0)
    return sent


async def test_sigkill_while_producing_keeps_every_acknowledged_record(
        tmp_path: Path, processes: list[BrokerProcess]) -> None:
    data = tmp_path / "data"
    segment_bytes = "log.segment.bytes=1048576"
    first = await start(processes, data, segment_bytes)
    await trio.to_thread.run_sync(create_topic, first.bootstrap, "crash", 1)
    stop = threading.Event()
    acked: list[tuple[int, bytes]] = []
    sent: list[int] = []

    async def produce() -> None:
        sent.append(await trio.to_thread.run_sync(
            confluent_produce_until_stopped, first.bootstrap, "crash", stop, acked))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        with trio.fail_after(60):
            while len(acked) < 8000:  # ~2.6 MB: a few 1 MiB segments
                await trio.sleep(0.01)
        first.proc.kill()  # SIGKILL, mid-stream
        assert await first.exit_code() == -signal.SIGKILL
        stop.set()
    assert sent[0] >= len(acked) >= 8000

    second = await start(processes, data, segment_bytes)
    got = await trio.to_thread.run_sync(confluent_consume_all, second.bootstrap, "crash", 1)
    stored = dict(got[0])
    assert [o for o, _ in got[0]] == list(range(len(got[0])))
    # Every acknowledged record is there at its offset, in the order it was produced.
    assert all(stored.get(offset) == value for offset, value in acked)
    assert [o for o, _ in acked] == sorted(o for o, _ in acked)
    assert [v for _, v in acked] == sorted(v for _, v in acked)
    second.proc.send_signal(signal.SIGTERM)
    assert await second.exit_code() == 0, second.log_text()
    # No torn tail: every batch of every segment is whole with a valid CRC.
    assert len(segment_files(data, "crash", 0)) >= 3
    assert check_clean_log(data, "crash", 0) == [v for _, v in got[0]]


def torn_tails(last_batch: bytes, next_offset: int) -> dict[str, bytes]:
    """What a crash can leave after the real end of the active segment."""
    bad_crc = bytearray(last_batch)
    bad_crc[:8] = next_offset.to_bytes(8, "big")
    bad_crc[-1] ^= 0xFF  # a record byte: the CRC no longer matches
    return {
        "half a batch": last_batch[:len(last_batch) // 2],
        "a batch with a bad CRC": bytes(bad_crc),
        "garbage": b"\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x01\x00\xde\xad\xbe\xef" * 8,
    }


async def test_recovery_cuts_exactly_a_torn_tail(tmp_path: Path,
                                                 processes: list[BrokerProcess]) -> None:
    data = tmp_path / "data"
    small_segments = "log.segment.bytes=1048576"  # the active segment's sparse file is read
    process = await start(processes, data, small_segments)
    await trio.to_thread.run_sync(create_topic, process.bootstrap, "torn", 1)
    values: list[bytes] = []
    for tail in ["half a batch", "a batch with a bad CRC", "garbage"]:
        batch = [b"%s-%03d" % (tail.encode(), i) for i in range(50)]
        acked = await trio.to_thread.run_sync(kafka_python_produce, process.bootstrap,
                                              "torn", batch)
        assert [o for _, o in acked] == list(range(len(values), len(values) + 50))
        values += batch
        process.kill()
        assert await process.exit_code() == -signal.SIGKILL

        [segment] = segment_files(data, "torn", 0)
        with open(segment, "r+b") as f, mmap.mmap(f.fileno(), 0) as content:
            # (After a restart the active segment is mapped at the default 1 GiB, whatever
            # log.segment.bytes says: sparse, so only what is needed is read.)
            end = whole_batches(content)
            # after the real data: the sparse zeros of the active segment
            assert not any(content[end:end + (1 << 16)])
            good = content[:end]
            last_pos, last = list(iter_batches(good))[-1]
            next_offset = last.base_offset + last.last_offset_delta + 1
            assert next_offset == len(values)
            torn = torn_tails(good[last_pos:], next_offset)[tail]
            content[end:end + len(torn)] = torn

        process = await start(processes, data, small_segments)
        got = await trio.to_thread.run_sync(confluent_consume_all, process.bootstrap,
                                            "torn", 1)
        assert got[0] == list(enumerate(values)), tail
        # The next round's appends must continue right after the recovered end.
    process.proc.send_signal(signal.SIGTERM)
    assert await process.exit_code() == 0, process.log_text()
    [segment] = segment_files(data, "torn", 0)
    assert check_clean_log(data, "torn", 0) == values
    # The valid bytes are untouched: exactly the torn tail was removed.
    assert segment.read_bytes()[:end] == good
