"""kcat producing and consuming through the broker, in every codec, against kafka-python.

`kcat -P` writes keyed lines (`-K:`), headers (`-H`), empty and (with `-Z`) null keys and
values with each codec (`-z`); kafka-python reads them back record for record, and
`kcat -C -e -f ...` prints them with exactly the timestamps kafka-python saw. The other
way round, what kafka-python produced (explicit timestamps, null key, null and empty
values, repeated and empty headers) is printed by kcat exactly as expected.

kcat cannot set timestamps: librdkafka stamps CreateTime from the wall clock, so those are
checked against the clock around the run and then compared between the two clients.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from protocol.records import Compression, iter_batches
from tests.clients.conftest import in_thread, run_kcat
from tests.clients.test_roundtrip_clients import CODECS, expected_codec
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)

TS = 1_700_000_000_000
#: %p partition, %o offset, %T timestamp, %K/%S key/value length (-1 for NULL), %k/%s key
#: and value (with -Z "NULL" for a null or empty one), %h headers as n=v CSV.
FORMAT = r"%p|%o|%T|%K|%k|%S|%s|%h\n"
HEADERS = [("h", b"1"), ("h", b"2"), ("e", b"")]
V1 = b"value one " * 20
V3 = b"value three " * 20
NOKEY = b"a line without a key delimiter " * 5

#: kcat -P input (without -Z, then with -Z) and what each line becomes: (key, value).
KCAT_LINES = b"k1:" + V1 + b"\nk2:\n:" + V3 + b"\n" + NOKEY + b"\nk5:a:b\n"
KCAT_NULL_LINES = b"k6:\n:v7\n"
KCAT_RECORDS: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = [
    (b"k1", V1, HEADERS), (b"k2", b"", HEADERS), (b"", V3, HEADERS), (None, NOKEY, HEADERS),
    (b"k5", b"a:b", HEADERS), (b"k6", None, []), (None, b"v7", []),
]

KP_MESSAGES: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]], int]] = [
    (b"key-0", b"value-0 " * 20, [("h1", b"one"), ("h2", b"")], TS),
    (None, b"no key", [], TS + 1),
    (b"null-value", None, [("only", b"header")], TS + 2),
    (b"empty-value", b"", [], TS + 3),
    (b"repeated", b"r" * 300, [("h", b"1"), ("h", b"2")], TS - 86_400_000),
]


def line(partition: int, offset: int, timestamp: int, key: bytes | None,
         value: bytes | None, headers: list[tuple[str, bytes]]) -> str:
    """One record as kcat -Z prints it with FORMAT."""
    def length(b: bytes | None) -> int:
        return -1 if b is None else len(b)

    def text(b: bytes | None) -> str:
        return "NULL" if not b else b.decode()

    csv = ",".join(f"{k}={v.decode()}" for k, v in headers)
    return (f"{partition}|{offset}|{timestamp}|{length(key)}|{text(key)}|{length(value)}|"
            f"{text(value)}|{csv}\n")


def kafka_python_read(bootstrap: str, topic: str, partition: int, count: int
                      ) -> list[tuple[int, Any, Any, list[tuple[str, bytes]], int]]:
    from kafka import KafkaConsumer, TopicPartition

    tp = TopicPartition(topic, partition)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[tuple[int, Any, Any, list[tuple[str, bytes]], int]] = []
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.offset, r.key, r.value, list(r.headers), r.timestamp)
                        for r in records]
        return got
    finally:
        consumer.close()


def kafka_python_write(bootstrap: str, topic: str, partition: int, codec: str) -> list[int]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                             compression_type=None if codec == "none" else codec)
    try:
        futures = [producer.send(topic, partition=partition, key=k, value=v, headers=h,
                                 timestamp_ms=ts) for k, v, h, ts in KP_MESSAGES]
        producer.flush(30)
        return [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close(10)


@pytest.mark.parametrize("codec", CODECS)
async def test_kcat_and_kafka_python_read_each_other(broker: RunningBroker, kcat: str,
                                                     codec: str) -> None:
    broker.broker.topics.create("kc", 2)
    b = ["-b", broker.bootstrap, "-t", "kc", "-m", "30"]

    # kcat -> kafka-python (partition 0)
    before = int(time.time() * 1000)
    headers = [arg for k, v in HEADERS for arg in ("-H", f"{k}={v.decode()}")]
    done = await run_kcat(kcat, "-P", *b, "-p", "0", "-K:", *headers, "-z", codec,
                          stdin=KCAT_LINES)
    assert done.returncode == 0, done.stderr
    done = await run_kcat(kcat, "-P", "-Z", *b, "-p", "0", "-K:", "-z", codec,
                          stdin=KCAT_NULL_LINES)
    assert done.returncode == 0, done.stderr
    after = int(time.time() * 1000)

    log = broker.broker.topics.log("kc", 0)
    assert log is not None
    first, *_ = [h for _, h in iter_batches(log.read_bytes(0, 1 << 20))]
    assert (first.records_count, first.compression) == (5, expected_codec("confluent-kafka",
                                                                           codec))
    read = await in_thread(kafka_python_read, broker.bootstrap, "kc", 0, len(KCAT_RECORDS))
    assert [(o, k, v, h) for o, k, v, h, _ in read] == [
        (offset, k, v, h) for offset, (k, v, h) in enumerate(KCAT_RECORDS)]
    assert all(before <= ts <= after for *_, ts in read)

    done = await run_kcat(kcat, "-C", "-Z", *b, "-p", "0", "-o", "beginning", "-e",
                          "-f", FORMAT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "".join(line(0, o, ts, k, v, h) for o, k, v, h, ts in read)

    # kafka-python -> kcat (partition 1)
    offsets = await in_thread(kafka_python_write, broker.bootstrap, "kc", 1, codec)
    assert offsets == list(range(len(KP_MESSAGES)))
    log1 = broker.broker.topics.log("kc", 1)
    assert log1 is not None
    assert {h.compression for _, h in iter_batches(log1.read_bytes(0, 1 << 20))} == {
        Compression[codec.upper()]}
    done = await run_kcat(kcat, "-C", "-Z", *b, "-p", "1", "-o", "beginning", "-e",
                          "-f", FORMAT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "".join(
        line(1, offset, ts, k, v, h) for offset, (k, v, h, ts) in enumerate(KP_MESSAGES))
