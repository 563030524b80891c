"""In-process micro-benchmarks of the broker's produce and fetch paths: CPU per request and
per record, no network, no client library.

    .venv/bin/python bench/hotpath_bench.py                 # every benchmark
    .venv/bin/python bench/hotpath_bench.py --only produce,wire-produce --repeat 7

What each one times (CPU seconds of the thread that runs the broker, from
`getrusage(RUSAGE_THREAD)`: user + system, so the kernel's copies count and other processes
on the machine do not; the system share is printed too):

- `produce`: one big request per iteration (`--records` records of `--size` bytes in one
  batch, like librdkafka's default batching): `frames.decode_request`, the Produce
  handler (validation, the append to a real segment file) and `frames.encode_response`.
- `produce-1`: the same with one record per request (the latency workload's request).
- `fetch`: Fetch v12 requests (no session, as librdkafka sends them; 1 MiB per partition)
  walking the log that `produce` wrote: decode, handler, encode (the records stay a file
  slice: nothing is read).
- `wire-produce`, `wire-produce-1`, `wire-fetch`: the whole connection (`Connection.serve`:
  frame reading, dispatch, response writing with `sendfile`), with a
  client process that sends the same frames one at a time and reads each response whole.
  Only the broker thread's CPU is counted. Loopback TCP by default (`--transport unix`
  for a socketpair).

Every benchmark runs `--repeat` rounds against a fresh data directory (under `--dir`, the
system temp dir by default: use a disk-backed one, since writing the page cache is part of
the cost) and prints the min and median. Appends write new page-cache pages, whose first
touch costs what the machine's memory makes it cost: compare runs on the same machine,
alternating A and B, and prefer `valgrind --tool=callgrind` (with `--only`) for exact
instruction counts of the Python side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio  # noqa: E402

from broker.config import BrokerConfig  # noqa: E402
from broker.connection import Connection  # noqa: E402
from broker.context import RequestContext  # noqa: E402
from broker.handlers import REGISTRY  # noqa: E402
from broker.server import Broker  # noqa: E402
from protocol.frames import decode_request, encode_request, encode_response  # noqa: E402
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic  # noqa: E402
from protocol.messages.produce_request import (  # noqa: E402
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch  # noqa: E402

TOPIC = "bench"
PRODUCE_VERSION = 9  # what librdkafka 2.x sends
FETCH_VERSION = 12  # librdkafka without topic ids
PARTITION_MAX_BYTES = 1 << 20  # librdkafka's max.partition.fetch.bytes default
FETCH_MAX_BYTES = 52_428_800


def produce_frame(records: int, size: int, correlation_id: int = 1) -> bytes:
    """A Produce request frame (without its size prefix) carrying one batch."""
    now = int(time.time() * 1000)
    value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    batch = build_batch([(None, value)] * records, base_timestamp=now, max_timestamp=now)
    request = ProduceRequest(transactional_id=None, acks=1, timeout_ms=30_000, topic_data=[
        TopicProduceData(name=TOPIC, partition_data=[
            PartitionProduceData(index=0, records=batch)])])
    return b"".join(encode_request(0, PRODUCE_VERSION, correlation_id, "bench", request))[4:]


def fetch_frame(offset: int, correlation_id: int = 1) -> bytes:
    request = FetchRequest(
        replica_id=-1, max_wait_ms=500, min_bytes=1, max_bytes=FETCH_MAX_BYTES,
        isolation_level=0, session_id=0, session_epoch=-1,
        topics=[FetchTopic(topic=TOPIC, partitions=[FetchPartition(
            partition=0, fetch_offset=offset, partition_max_bytes=PARTITION_MAX_BYTES)])])
    return b"".join(encode_request(1, FETCH_VERSION, correlation_id, "bench", request))[4:]


def new_broker(root: str) -> Broker:
    data = tempfile.mkdtemp(dir=root)
    broker = Broker(BrokerConfig({"log.dirs": data, "listeners": "PLAINTEXT://127.0.0.1:0"}))
    broker.topics.create(TOPIC, 1)
    return broker


def close_broker(broker: Broker) -> None:
    data = broker.config["log.dirs"]
    broker.close()
    shutil.rmtree(data, ignore_errors=True)


async def handle(broker: Broker, frame: bytes | bytearray | memoryview) -> list[Any]:
    """What `Connection._handle_frame` does with a frame, minus the socket."""
    request = decode_request(frame)
    ctx = RequestContext(request.api_key, request.api_version, request.correlation_id,
                         request.client_id, "bench", broker)
    registration = REGISTRY[request.api_key]
    if registration.is_async:
        response = await registration.func(ctx, request.body)
    else:
        response = registration.func(ctx, request.body)
    return encode_response(request.api_key, request.api_version, request.correlation_id,
                           response)


class Cpu:
    """CPU time of the calling thread, user and system apart."""

    def __init__(self) -> None:
        self.user = self.system = 0.0

    @staticmethod
    def now() -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return usage.ru_utime, usage.ru_stime

    def __enter__(self) -> Cpu:
        self._start = self.now()
        return self

    def __exit__(self, *exc: object) -> None:
        user, system = self.now()
        self.user = user - self._start[0]
        self.system = system - self._start[1]

    @property
    def total(self) -> float:
        return self.user + self.system


# -- in-process handler paths ---------------------------------------------------------------

def bench_produce(root: str, frame: bytes, requests: int) -> Cpu:
    """Broker-thread CPU seconds for `requests` produce requests of `frame`."""
    broker = new_broker(root)

    async def run() -> Cpu:
        await handle(broker, frame)  # warm up: segment created and mapped
        with Cpu() as cpu:
            for _ in range(requests):
                await handle(broker, frame)
        return cpu

    try:
        return trio.run(run)
    finally:
        close_broker(broker)


def bench_fetch(root: str, frame: bytes, produce_requests: int) -> tuple[Cpu, int, int]:
    """(CPU seconds, fetch requests, records fetched) reading back what `produce_requests`
    requests of `frame` wrote, one Fetch per response, from offset 0 to the end."""
    broker = new_broker(root)

    async def run() -> tuple[Cpu, int, int]:
        for _ in range(produce_requests):
            await handle(broker, frame)
        plog = broker.topics.log(TOPIC, 0)
        assert plog is not None
        end = plog.log_end_offset
        offsets = [0]
        while offsets[-1] < end:  # where each fetch starts, found before timing
            chunks = await handle(broker, fetch_frame(offsets[-1]))
            offsets.append(_next_offset(broker, chunks, offsets[-1]))
        fetches = [fetch_frame(offset) for offset in offsets[:-1]]
        with Cpu() as cpu:
            for request in fetches:
                await handle(broker, request)
        return cpu, len(fetches), end

    try:
        return trio.run(run)
    finally:
        close_broker(broker)


def _next_offset(broker: Broker, chunks: list[Any], offset: int) -> int:
    """The offset after the last batch of a fetch response's one file slice."""
    plog = broker.topics.log(TOPIC, 0)
    assert plog is not None
    slices = [c for c in chunks if not isinstance(c, bytes | bytearray | memoryview)]
    if not slices:
        raise RuntimeError(f"fetch at {offset} returned no records")
    piece = slices[-1]
    data = os.pread(piece.fileno(), len(piece), piece.position)
    pos = last = 0
    while pos + 61 <= len(data):
        base = int.from_bytes(data[pos:pos + 8], "big")
        length = int.from_bytes(data[pos + 8:pos + 12], "big")
        delta = int.from_bytes(data[pos + 23:pos + 27], "big")
        last = base + delta
        pos += 12 + length
    return last + 1


# -- the whole connection over a socketpair -------------------------------------------------

def _read_exactly(sock: socket.socket, n: int) -> None:
    view = memoryview(bytearray(n))
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise RuntimeError("broker closed the connection")
        got += k


def _client(sock: socket.socket, frames: Callable[[int], bytes | None]) -> None:
    """Send frames one at a time, each answered (read whole) before the next."""
    i = 0
    while True:
        frame = frames(i)
        if frame is None:
            break
        sock.sendall(len(frame).to_bytes(4, "big") + frame)
        size = int.from_bytes(_recv_exact_small(sock, 4), "big")
        _read_exactly(sock, size)
        i += 1
    sock.shutdown(socket.SHUT_WR)


def _recv_exact_small(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise RuntimeError("broker closed the connection")
        data += more
    return data


def _pair(transport: str) -> tuple[socket.socket, socket.socket]:
    """A connected (broker side, client side) pair: loopback TCP (what clients use; the
    kernel's TCP costs count) or an AF_UNIX socketpair."""
    if transport == "unix":
        return socket.socketpair()
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ours, client


def bench_wire(root: str, frames: Callable[[int], bytes | None], transport: str,
               setup: int = 0, setup_frame: bytes | None = None) -> Cpu:
    """Broker-thread CPU seconds of one connection serving `frames(i)` until it returns
    None; `setup` produce requests of `setup_frame` are appended first (not timed). The
    client is a forked process, so that it never holds the broker's GIL."""
    broker = new_broker(root)
    ours, theirs = _pair(transport)
    ours.setblocking(False)

    async def run() -> Cpu:
        if setup_frame is not None:
            for _ in range(setup):
                await handle(broker, setup_frame)
        client = multiprocessing.get_context("fork").Process(
            target=_client, args=(theirs, frames), daemon=True)
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        with Cpu() as cpu:
            client.start()
            theirs.close()
            await Connection(broker, stream, "PLAINTEXT").serve()
        client.join()
        if client.exitcode != 0:
            raise RuntimeError(f"client exited with {client.exitcode}")
        return cpu

    try:
        return trio.run(run)
    finally:
        theirs.close()
        close_broker(broker)


# -- driver ---------------------------------------------------------------------------------

def report(name: str, runs: list[Cpu], requests: int, records: int) -> None:
    per_request = [r.total / requests * 1e6 for r in runs]
    per_record = [r.total / records * 1e6 for r in runs]
    system = statistics.median(r.system / r.total * 100 if r.total else 0.0 for r in runs)
    print(f"{name:<15}{requests:>6} req  us/request min {min(per_request):8.2f} "
          f"median {statistics.median(per_request):8.2f}  us/record min "
          f"{min(per_record):7.4f} median {statistics.median(per_record):7.4f}  "
          f"system {system:3.0f}%", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=6000, help="records per big batch")
    parser.add_argument("--size", type=int, default=100, help="value bytes per record")
    parser.add_argument("--requests", type=int, default=300, help="big requests per round")
    parser.add_argument("--small-requests", type=int, default=5000,
                        help="one-record requests per round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where data dirs go (disk-backed)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--transport", choices=("tcp", "unix"), default="tcp",
                        help="wire benchmarks: loopback TCP (default) or a socketpair")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    root = tempfile.mkdtemp(prefix="hotpath-", dir=args.dir)
    big = produce_frame(args.records, args.size)
    small = produce_frame(1, args.size)
    print(f"batch of {args.records} x {args.size} B records: {len(big)} B frame; "
          f"{args.repeat} rounds", flush=True)

    tr = args.transport

    def want(name: str) -> bool:
        return not only or name in only

    try:
        if want("produce"):
            report("produce", [bench_produce(root, big, args.requests)
                               for _ in range(args.repeat)], args.requests,
                   args.requests * args.records)
        if want("produce-1"):
            report("produce-1", [bench_produce(root, small, args.small_requests)
                                 for _ in range(args.repeat)], args.small_requests,
                   args.small_requests)
        if want("fetch"):
            runs = [bench_fetch(root, big, args.requests) for _ in range(args.repeat)]
            report("fetch", [r[0] for r in runs], runs[0][1], runs[0][2])
        if want("wire-produce"):
            n = args.requests
            report("wire-produce", [bench_wire(root, lambda i: big if i < n else None, tr)
                                    for _ in range(args.repeat)], n, n * args.records)
        if want("wire-produce-1"):
            n = args.small_requests
            report("wire-produce-1", [bench_wire(root, lambda i: small if i < n else None, tr)
                                      for _ in range(args.repeat)], n, n)
        if want("wire-fetch"):
            n = args.requests
            per_fetch = args.records  # each batch is under 1 MiB: one batch per fetch
            frames = [fetch_frame(i * per_fetch) for i in range(n)]
            report("wire-fetch", [bench_wire(root, lambda i: frames[i] if i < n else None, tr,
                                             setup=n, setup_frame=big)
                                  for _ in range(args.repeat)], n, n * per_fetch)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
