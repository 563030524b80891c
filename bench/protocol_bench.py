"""Codec micro-benchmarks: microseconds per operation (min and median of repeated runs).

Run: ``python bench/protocol_bench.py`` (or ``make bench``). Goals: decoding a 1 MiB
single-partition Produce request and encoding a Fetch response whose records are file-slice
placeholders stay under 30 us whatever the record size; small messages take a few us.
"""

from __future__ import annotations

import statistics
import sys
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.frames import decode_request, encode_request, encode_response, join_chunks  # noqa: E402
from protocol.messages.api_versions_request import ApiVersionsRequest  # noqa: E402
from protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse  # noqa: E402
from protocol.messages.fetch_response import (  # noqa: E402
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic  # noqa: E402
from protocol.messages.metadata_response import (  # noqa: E402
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)
from protocol.messages.produce_request import (  # noqa: E402
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)


class FileSlice:
    """Stand-in for storage's file-slice placeholder."""

    __slots__ = ("length", "position")

    def __init__(self, position: int, length: int) -> None:
        self.position = position
        self.length = length

    def __len__(self) -> int:
        return self.length


def bench(name: str, fn: Callable[[], object], number: int = 2000, repeat: int = 15) -> None:
    fn()
    times = timeit.repeat(fn, number=number, repeat=repeat)
    per = [t / number * 1e6 for t in times]
    print(f"{name:<58} min {min(per):8.2f} us   median {statistics.median(per):8.2f} us")


def produce_frame(version: int, size: int) -> bytes:
    t = TopicProduceData(name="bench-topic" if version < 13 else "",
                         topic_id=uuid.uuid4() if version >= 13 else uuid.UUID(int=0),
                         partition_data=[PartitionProduceData(0, bytes(size))])
    req = ProduceRequest(transactional_id=None, acks=-1, timeout_ms=30000, topic_data=[t])
    return join_chunks(encode_request(0, version, 1, "bench-client", req))[4:]


def fetch_response(partitions: int) -> FetchResponse:
    parts = [PartitionData(partition_index=i, high_watermark=1000, last_stable_offset=1000,
                           log_start_offset=0, records=FileSlice(0, 1 << 20))
             for i in range(partitions)]
    return FetchResponse(responses=[FetchableTopicResponse(topic_id=uuid.uuid4(),
                                                           partitions=parts)])


def main() -> None:
    print(f"Python {sys.version.split()[0]}")
    mib = 1 << 20
    for v in (9, ProduceRequest.MAX_VERSION):
        frame = produce_frame(v, mib)
        bench(f"decode_request Produce v{v}, 1 partition, 1 MiB", lambda f=frame: decode_request(f))
    small = produce_frame(9, 100)
    bench("decode_request Produce v9, 1 partition, 100 B", lambda: decode_request(small))

    v = FetchResponse.MAX_VERSION
    for n in (1, 100):
        resp = fetch_response(n)
        bench(f"encode_response Fetch v{v}, {n} partition(s), file slices",
              lambda r=resp: encode_response(1, v, 1, r), number=2000 if n == 1 else 200)

    api_req = join_chunks(encode_request(18, 4, 1, "bench-client", ApiVersionsRequest(
        client_software_name="odradek-bench", client_software_version="1.0")))[4:]
    bench("decode_request ApiVersions v4", lambda: decode_request(api_req))
    api_resp = ApiVersionsResponse(api_keys=[ApiVersion(k, 0, 10) for k in range(70)])
    bench("encode_response ApiVersions v4, 70 keys", lambda: encode_response(18, 4, 1, api_resp))
    api_resp3 = ApiVersionsResponse(api_keys=[ApiVersion(k, 0, 10) for k in range(3)])
    bench("encode_response ApiVersions v4, 3 keys", lambda: encode_response(18, 4, 1, api_resp3))

    md_req = join_chunks(encode_request(3, 12, 1, "bench-client", MetadataRequest(
        topics=[MetadataRequestTopic(name="bench-topic")])))[4:]
    bench("decode_request Metadata v12, 1 topic", lambda: decode_request(md_req))
    md_resp = MetadataResponse(
        brokers=[MetadataResponseBroker(1, "localhost", 9092)],
        cluster_id="cluster", controller_id=1,
        topics=[MetadataResponseTopic(name=f"topic-{i}", topic_id=uuid.uuid4(), partitions=[
            MetadataResponsePartition(partition_index=0, leader_id=1, replica_nodes=[1],
                                      isr_nodes=[1])]) for i in range(10)])
    bench("encode_response Metadata v12, 10 topics", lambda: encode_response(3, 12, 1, md_resp))


if __name__ == "__main__":
    main()
