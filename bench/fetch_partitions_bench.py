"""In-process micro-benchmark of Fetch requests over many partitions: broker CPU per request.

    .venv/bin/python bench/fetch_partitions_bench.py                       # every case
    .venv/bin/python bench/fetch_partitions_bench.py --partitions 100 --only idle,data

The consume workloads with many partitions (`bench/run.py --workloads partitions/1000`)
send, as librdkafka does, one sessionless Fetch (v16, topic ids, session epoch -1) per
round trip that lists every partition, while only a few partitions have records (the
producer's sticky partitioner fills a few partitions at a time). So the cost per request is
mostly per-partition work for partitions that return nothing. The cases:

- `idle`: every partition fetched at its log end (nothing to return, `max_wait_ms` 0): the
  pure per-partition cost.
- `data`: `--with-data` partitions hold records and are fetched from offset 0 with 1 MiB
  per partition (librdkafka's `max.partition.fetch.bytes`), the others at their log end.
- `session`: the `idle` request in an incremental fetch session (KIP-227): a full request
  first, then incremental ones that list no partitions (the Java client's requests while
  it waits for records).

Each request is decoded, handled and encoded (`frames.encode_response`; the records stay
file slices, nothing is sent) on one thread, whose CPU time (`getrusage(RUSAGE_THREAD)`,
so other processes do not count) is divided by the requests. Every case runs `--repeat`
rounds on one broker and prints the min and median. Compare A and B alternately on the
same machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import trio  # noqa: E402

from bench.hotpath_bench import Cpu, handle  # noqa: E402
from broker.config import BrokerConfig  # noqa: E402
from broker.server import Broker  # noqa: E402
from protocol.frames import encode_request  # noqa: E402
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic  # noqa: E402
from protocol.messages.produce_request import (  # noqa: E402
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import build_batch  # noqa: E402

TOPIC = "bench"
FETCH_VERSION = 16  # what librdkafka 2.16 sends to a broker with topic ids
PARTITION_MAX_BYTES = 1 << 20
FETCH_MAX_BYTES = 52_428_800


def _produce_frame(partition: int, records: int, size: int) -> bytes:
    now = int(time.time() * 1000)
    value = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    batch = build_batch([(None, value)] * records, base_timestamp=now, max_timestamp=now)
    request = ProduceRequest(transactional_id=None, acks=1, timeout_ms=30_000, topic_data=[
        TopicProduceData(name=TOPIC, partition_data=[
            PartitionProduceData(index=partition, records=batch)])])
    return b"".join(encode_request(0, 9, 1, "bench", request))[4:]


def _fetch_frame(topic_id: uuid.UUID, offsets: list[int], *, session_id: int = 0,
                 epoch: int = -1, listed: bool = True) -> bytes:
    partitions = [FetchPartition(partition=p, fetch_offset=offset,
                                 partition_max_bytes=PARTITION_MAX_BYTES)
                  for p, offset in enumerate(offsets)] if listed else []
    request = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=FETCH_MAX_BYTES,
        isolation_level=0, session_id=session_id, session_epoch=epoch,
        topics=[FetchTopic(topic_id=topic_id, partitions=partitions)] if listed else [])
    return b"".join(encode_request(1, FETCH_VERSION, 1, "bench", request))[4:]


def run(partitions: int, with_data: int, requests: int, repeat: int, only: set[str]
        ) -> None:
    root = tempfile.mkdtemp(prefix="fetch-bench-")
    broker = Broker(BrokerConfig({"log.dirs": root, "listeners": "PLAINTEXT://127.0.0.1:0"}))
    topic = broker.topics.create(TOPIC, partitions)

    async def main() -> None:
        # ~1.1 MB in each partition with data, in batches of 100 records of 1 KB.
        for p in range(with_data):
            for _ in range(11):
                await handle(broker, _produce_frame(p, 100, 1000))
        ends = []
        for p in range(partitions):
            log = broker.topics.log(TOPIC, p)
            assert log is not None
            ends.append(log.log_end_offset)
        data_offsets = [0] * with_data + ends[with_data:]
        cases = {
            "idle": [_fetch_frame(topic.topic_id, ends)] * requests,
            "data": [_fetch_frame(topic.topic_id, data_offsets)] * requests,
        }
        for name, frames in cases.items():
            if only and name not in only:
                continue
            _report(name, [await _timed(broker, frames) for _ in range(repeat)], requests)
        if not only or "session" in only:
            runs = []
            for _ in range(repeat):
                full = _fetch_frame(topic.topic_id, ends, epoch=0)
                chunks = await handle(broker, full)
                session_id = _session_id(chunks)
                incremental = [_fetch_frame(topic.topic_id, [], session_id=session_id,
                                            epoch=n + 1, listed=False)
                               for n in range(requests)]
                runs.append(await _timed(broker, incremental))
                await handle(broker, _fetch_frame(topic.topic_id, [], session_id=session_id,
                                                  epoch=-1, listed=False))
            _report("session", runs, requests)

    try:
        trio.run(main)
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)


def _session_id(chunks: list[object]) -> int:
    head = chunks[0]
    assert isinstance(head, bytes | bytearray | memoryview)
    # size(4) correlation id(4) tagged fields(1) throttle(4) error(2) session id(4)
    return int.from_bytes(bytes(head[15:19]), "big")


async def _timed(broker: Broker, frames: list[bytes]) -> Cpu:
    with Cpu() as cpu:
        for frame in frames:
            await handle(broker, frame)
    return cpu


def _report(name: str, runs: list[Cpu], requests: int) -> None:
    per = sorted(r.total / requests * 1e6 for r in runs)
    print(f"{name:8s} µs/request  min {per[0]:9.1f}  median {statistics.median(per):9.1f}"
          f"  (system {statistics.median(r.system / requests * 1e6 for r in runs):.1f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--with-data", type=int, default=25)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated of idle,data,session")
    args = parser.parse_args()
    only = {s for s in args.only.split(",") if s}
    run(args.partitions, args.with_data, args.requests, args.repeat, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
