"""Compressed produce through real clients over a real socket, and the fast validation path
it takes: librdkafka (confluent-kafka) and kafka-python batches in lz4 are decoded by the C
decoder into the reusable buffer, zstd batches by one reader into it, none falls back to
the lz4 library; a damaged compressed batch still gets Kafka's answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from protocol import compression, fastscan
from protocol.errors import ErrorCode
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import (
    BATCH_HEADER_SIZE,
    Compression,
    Record,
    build_batch,
    iter_batches,
    iter_records,
    write_batch_crc,
)
from tests.conftest import RunningBroker
from tests.wire import WireClient

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(fastscan._c_lz4 is None,
                       reason="the C extension protocol._speedups was not built"),
]

RECORDS = 3000
VALUE = b"0123456789abcdef" * 16


class Spy:
    """Counts what the produce path's decompression did."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.c_lz4: list[int | None] = []
        self.zstd_views = 0
        self.library_lz4 = 0
        c_lz4 = fastscan.lz4_frames_into
        zstd_view = compression._VIEW_DECODERS[Compression.ZSTD]
        library_lz4 = compression._unlz4

        def spy_c(src: Any, dst: Any) -> int | None:
            result = c_lz4(src, dst)
            self.c_lz4.append(result)
            return result

        def spy_zstd(data: Any, limit: int) -> Any:
            self.zstd_views += 1
            return zstd_view(data, limit)

        def spy_library(data: Any, limit: int) -> bytes:
            self.library_lz4 += 1
            return library_lz4(data, limit)

        monkeypatch.setattr(fastscan, "lz4_frames_into", spy_c)
        monkeypatch.setitem(compression._VIEW_DECODERS, Compression.ZSTD, spy_zstd)
        monkeypatch.setattr(compression, "_unlz4", spy_library)


def stored(running: RunningBroker, topic: str) -> list[tuple[Any, Record]]:
    log = running.broker.topics.log(topic, 0)
    assert log is not None
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    return [(h, r) for pos, h in iter_batches(data) for r in iter_records(data, pos, h)]


def confluent_produce(bootstrap: str, topic: str, codec: str) -> list[Any]:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 20, "message.timeout.ms": 30000})
    errors: list[Any] = []
    for i in range(RECORDS):
        producer.produce(topic, key=b"%d" % i, value=VALUE,
                         on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(30) == 0
    return errors


def kafka_python_produce(bootstrap: str, topic: str, codec: str) -> list[Any]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                             linger_ms=20)
    futures = [producer.send(topic, key=b"%d" % i, value=VALUE) for i in range(RECORDS)]
    producer.flush(30)
    producer.close()
    return [f.exception for f in futures]


PRODUCERS: dict[str, Callable[[str, str, str], list[Any]]] = {
    "confluent-kafka": confluent_produce, "kafka-python": kafka_python_produce,
}


@pytest.mark.parametrize("client", sorted(PRODUCERS))
@pytest.mark.parametrize("codec", ["lz4", "zstd"])
async def test_clients_compressed_batches_take_the_fast_path(
        broker: RunningBroker, monkeypatch: pytest.MonkeyPatch, client: str, codec: str
) -> None:
    spy = Spy(monkeypatch)
    broker.broker.topics.create("c", 1)
    errors = await trio.to_thread.run_sync(PRODUCERS[client], broker.bootstrap, "c", codec)
    assert errors == [None] * RECORDS
    records = stored(broker, "c")
    assert [r.key for _, r in records] == [b"%d" % i for i in range(RECORDS)]
    assert all(r.value == VALUE for _, r in records)
    batches = {h.base_offset for h, _ in records}
    expected = Compression.LZ4 if codec == "lz4" else Compression.ZSTD
    assert {h.compression for h, _ in records} == {expected}
    if codec == "lz4":
        # Every batch the client wrote was decoded in C, none by the library.
        assert len(spy.c_lz4) == len(batches)
        assert all(n is not None and n > 0 for n in spy.c_lz4)
        assert spy.library_lz4 == 0
    else:
        assert spy.zstd_views == len(batches)


@pytest.mark.parametrize("codec", [Compression.LZ4, Compression.ZSTD], ids=lambda c: c.name)
async def test_damaged_compressed_batch_is_unknown_server_error(
        broker: RunningBroker, codec: Compression) -> None:
    """A batch whose CRC is right but whose compressed records do not decode: Kafka wraps
    the codec's failure in a KafkaException, answered as UNKNOWN_SERVER_ERROR."""
    broker.broker.topics.create("bad", 1)
    batch = bytearray(build_batch([(b"k", VALUE)] * 50, compression=codec))
    tail = len(batch) - 8
    batch[tail:] = b"\xff" * 8  # the end of the compressed stream
    if codec == Compression.LZ4:
        batch[BATCH_HEADER_SIZE + 6] ^= 0x55  # and the lz4 header checksum
    write_batch_crc(batch, 0)
    wire = await WireClient.connect(broker.host, broker.port)
    try:
        response = await wire.request(0, 9, ProduceRequest(acks=1, timeout_ms=5000, topic_data=[
            TopicProduceData(name="bad", partition_data=[
                PartitionProduceData(index=0, records=bytes(batch))])]))
    finally:
        await wire.aclose()
    [t] = response.responses
    [p] = t.partition_responses
    assert (p.error_code, p.base_offset) == (ErrorCode.UNKNOWN_SERVER_ERROR, -1)
    log = broker.broker.topics.log("bad", 0)
    assert log is not None and log.log_end_offset == 0
