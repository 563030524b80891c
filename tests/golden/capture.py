"""Capture golden request/response frames from real clients talking to Apache Kafka.

Not a test: run it to (re)write ``tests/golden/frames/`` and ``tests/golden/batches/``::

    .venv/bin/python tests/golden/capture.py                   # every client
    .venv/bin/python tests/golden/capture.py kafka-python kcat # some clients

How this works
--------------
For each client a fresh reference Kafka (``compat/apache-kafka``) starts with its
``advertised.listeners`` pointing at a recording TCP proxy, so every connection the client opens,
bootstrap or not, goes through the proxy. The proxy splits each direction into frames (4-byte
size) and reads only the fixed header fields: api_key, api_version and correlation_id of a
request, correlation_id of a response. It pairs them per connection by correlation id. Nothing
here uses ``protocol/``: the captures must not depend on the code they check.

Then the scenarios run (admin, a producer per codec, a consumer group, more admin), and the
exchanges are trimmed (exact duplicates dropped, a few of each API/version kept) and written:

- ``frames/<client>/<NNN>_<ApiName>_v<version>.req|.resp``: frames without the size prefix;
- ``frames/<client>/index.json``: one entry per pair;
- ``batches/<client>-<codec>.bin``: the records field of the Produce that carried the codec's
  records (one or more record batches, exactly as the client sent them);
- ``batches/<client>-<codec>.json``: the records the scenario sent.

Each batch is cross-checked with a small independent decoder before it is written.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "compat" / "apache-kafka"))

from apache_kafka import KAFKA_VERSION, ReferenceKafka, free_port  # noqa: E402

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
GROUP_TOPIC = "golden-group"
CLIENTS = ["kafka-python", "confluent-kafka", "aiokafka", "kcat"]

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 32: "DescribeConfigs", 33: "AlterConfigs",
    36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups",
    44: "IncrementalAlterConfigs", 60: "DescribeCluster", 61: "DescribeProducers",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions",
    72: "PushTelemetry", 75: "DescribeTopicPartitions",
}
# How many distinct exchanges to keep per (api_key, api_version) and client.
KEEP = {0: 40, 1: 4, 3: 6, 12: 3, 18: 3}
KEEP_DEFAULT = 4


# --------------------------------------------------------------------------------------------
# Recording proxy


@dataclass
class Exchange:
    seq: int
    api_key: int
    api_version: int
    correlation_id: int
    request: bytes
    response: bytes | None = None


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seq: int = 0
    paused: bool = False  # set while a scenario does set-up that is not the client's own

    def request(self, frame: bytes) -> Exchange:
        api_key, api_version, corr = struct.unpack_from(">hhi", frame)
        with self.lock:
            self.seq += 1
            ex = Exchange(self.seq, api_key, api_version, corr, frame)
            if not self.paused:
                self.exchanges.append(ex)
        return ex


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes | None:
    size = _read_exact(sock, 4)
    if size is None:
        return None
    return _read_exact(sock, struct.unpack(">i", size)[0])


class RecordingProxy:
    """Accepts on ``port`` and forwards each connection to ``upstream``, recording frames."""

    def __init__(self, port: int, upstream: tuple[str, int], recorder: Recorder) -> None:
        self.port = port
        self.upstream = upstream
        self.recorder = recorder
        self.listener = socket.create_server(("127.0.0.1", port))
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            pending: dict[int, Exchange] = {}
            threading.Thread(target=self._up, args=(client, server, pending), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, pending), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket, pending: dict[int, Exchange]) -> None:
        while (frame := _read_frame(src)) is not None:
            ex = self.recorder.request(frame)
            pending[ex.correlation_id] = ex
            try:
                dst.sendall(struct.pack(">i", len(frame)) + frame)
            except OSError:
                break
        _close(src, dst)

    def _down(self, src: socket.socket, dst: socket.socket, pending: dict[int, Exchange]) -> None:
        while (frame := _read_frame(src)) is not None:
            corr = struct.unpack_from(">i", frame)[0]
            ex = pending.pop(corr, None)
            if ex is not None:
                ex.response = frame
            try:
                dst.sendall(struct.pack(">i", len(frame)) + frame)
            except OSError:
                break
        _close(src, dst)

    def close(self) -> None:
        self.closed = True
        _close(self.listener, *self.sockets)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


# --------------------------------------------------------------------------------------------
# What the producers send


def records_for(client: str, codec: str) -> list[dict[str, Any]]:
    """Four records: keys, headers, explicit timestamps, a null value; compressible values
    (kafka-python sends a batch uncompressed when compression does not make it smaller)."""
    base_ts = 1_700_000_000_000 + CODEC_IDS[codec] * 1000
    filler = f"golden {client} {codec} " * 8
    return [
        {"key": "k0", "value": f"{filler}0", "headers": [["h1", "v1"], ["h2", "v2"]],
         "timestamp": base_ts},
        {"key": "k1", "value": f"{filler}1", "headers": [], "timestamp": base_ts + 1},
        {"key": None, "value": f"{filler}2", "headers": [["only", "one"]],
         "timestamp": base_ts + 2},
        {"key": "tombstone", "value": None, "headers": [], "timestamp": base_ts + 3},
    ]


def enc(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def hdrs(r: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    return [(k, enc(v)) for k, v in r["headers"]]


def topic_for(codec: str) -> str:
    return f"golden-{codec}"


# --------------------------------------------------------------------------------------------
# Scenarios: each gets the bootstrap address (the proxy) and the real Kafka's address


def scenario_kafka_python(bootstrap: str, direct: str, recorder: Recorder) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-kafka-python")
    admin.create_topics(
        [NewTopic(topic_for(c), 1, 1) for c in CODECS] + [NewTopic(GROUP_TOPIC, 1, 1)],
        timeout_ms=10_000,
    )
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_for("none"))])
    admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    admin.list_topics()

    for codec in CODECS:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, client_id="golden-kafka-python",
            compression_type=None if codec == "none" else codec, linger_ms=200,
        )
        for r in records_for("kafka-python", codec):
            producer.send(topic_for(codec), key=enc(r["key"]), value=enc(r["value"]),
                          headers=hdrs(r), timestamp_ms=r["timestamp"])
        producer.flush()
        producer.close()

    group_producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
    for i in range(5):
        group_producer.send(GROUP_TOPIC, key=b"g%d" % i, value=b"group message %d" % i)
    group_producer.flush()
    group_producer.close()

    consumer = KafkaConsumer(
        GROUP_TOPIC, bootstrap_servers=bootstrap, group_id="golden-kafka-python",
        client_id="golden-kafka-python", auto_offset_reset="earliest",
        enable_auto_commit=False, heartbeat_interval_ms=300, fetch_max_wait_ms=100,
    )
    got = 0
    deadline = time.monotonic() + 20
    while got < 5 and time.monotonic() < deadline:
        for msgs in consumer.poll(timeout_ms=500).values():
            got += len(msgs)
    consumer.commit()
    time.sleep(1.0)  # a few heartbeats
    consumer.poll(timeout_ms=300)
    consumer.close()
    assert got == 5, got

    plain = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                          enable_auto_commit=False, fetch_max_wait_ms=100)
    from kafka import TopicPartition
    tps = [TopicPartition(topic_for(c), 0) for c in CODECS]
    plain.assign(tps)
    plain.end_offsets(tps)
    plain.offsets_for_times({tps[1]: 1_700_000_001_001})
    seen = 0
    deadline = time.monotonic() + 15
    while seen < 4 * len(CODECS) and time.monotonic() < deadline:
        for msgs in plain.poll(timeout_ms=500).values():
            seen += len(msgs)
    plain.close()

    admin.list_groups()
    admin.describe_groups(["golden-kafka-python"])
    admin.delete_topics([GROUP_TOPIC], timeout_ms=10_000)
    admin.close()


def scenario_confluent(bootstrap: str, direct: str, recorder: Recorder) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    conf = {"bootstrap.servers": bootstrap, "client.id": "golden-confluent-kafka"}
    admin = AdminClient(conf)
    futures = admin.create_topics(
        [NewTopic(topic_for(c), 1, 1) for c in CODECS] + [NewTopic(GROUP_TOPIC, 1, 1)]
    )
    for f in futures.values():
        f.result(15)
    for f in admin.describe_configs([ConfigResource("topic", topic_for("none")),
                                     ConfigResource("broker", "1")]).values():
        f.result(15)
    admin.list_topics(timeout=10)

    for codec in CODECS:
        producer = Producer({**conf, "compression.type": codec, "enable.idempotence": True,
                             "linger.ms": 100})
        for r in records_for("confluent-kafka", codec):
            producer.produce(topic_for(codec), key=enc(r["key"]), value=enc(r["value"]),
                             headers=hdrs(r), timestamp=r["timestamp"])
        assert producer.flush(15) == 0

    producer = Producer({**conf, "acks": "1"})
    for i in range(5):
        producer.produce(GROUP_TOPIC, key=b"g%d" % i, value=b"group message %d" % i)
    assert producer.flush(15) == 0

    consumer = Consumer({**conf, "group.id": "golden-confluent-kafka",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "heartbeat.interval.ms": 300, "fetch.wait.max.ms": 100})
    consumer.subscribe([GROUP_TOPIC])
    got = 0
    deadline = time.monotonic() + 20
    while got < 5 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got += 1
    consumer.commit(asynchronous=False)
    consumer.committed([TopicPartition(GROUP_TOPIC, 0)], timeout=10)
    consumer.get_watermark_offsets(TopicPartition(GROUP_TOPIC, 0), timeout=10)
    consumer.offsets_for_times([TopicPartition(topic_for("gzip"), 0, 1_700_000_001_001)],
                               timeout=10)
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        consumer.poll(0.2)
    consumer.close()
    assert got == 5, got

    admin.list_consumer_groups().result(15)
    for f in admin.describe_consumer_groups(["golden-confluent-kafka"]).values():
        f.result(15)
    for f in admin.delete_topics([GROUP_TOPIC]).values():
        f.result(15)


def scenario_aiokafka(bootstrap: str, direct: str, recorder: Recorder) -> None:
    asyncio.run(_aiokafka(bootstrap))


async def _aiokafka(bootstrap: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="golden-aiokafka")
    await admin.start()
    await admin.create_topics(
        [NewTopic(topic_for(c), 1, 1) for c in CODECS] + [NewTopic(GROUP_TOPIC, 1, 1)]
    )
    await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic_for("none"))])
    await admin.list_topics()

    for codec in CODECS:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id="golden-aiokafka",
            compression_type=None if codec == "none" else codec, linger_ms=200,
            enable_idempotence=codec in ("zstd", "none"),
        )
        await producer.start()
        futs = []
        for r in records_for("aiokafka", codec):
            futs.append(await producer.send(
                topic_for(codec), key=enc(r["key"]), value=enc(r["value"]),
                headers=hdrs(r), timestamp_ms=r["timestamp"]))
        await asyncio.gather(*futs)
        await producer.stop()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1)
    await producer.start()
    for i in range(5):
        await producer.send_and_wait(GROUP_TOPIC, key=b"g%d" % i, value=b"group message %d" % i)
    await producer.stop()

    consumer = AIOKafkaConsumer(
        GROUP_TOPIC, bootstrap_servers=bootstrap, group_id="golden-aiokafka",
        client_id="golden-aiokafka", auto_offset_reset="earliest", enable_auto_commit=False,
        heartbeat_interval_ms=300, fetch_max_wait_ms=100,
    )
    await consumer.start()
    got = 0
    deadline = time.monotonic() + 20
    while got < 5 and time.monotonic() < deadline:
        for msgs in (await consumer.getmany(timeout_ms=500)).values():
            got += len(msgs)
    await consumer.commit()
    await consumer.committed(TopicPartition(GROUP_TOPIC, 0))
    await consumer.end_offsets([TopicPartition(GROUP_TOPIC, 0)])
    await consumer.offsets_for_times({TopicPartition(topic_for("gzip"), 0): 1_700_000_001_001})
    await asyncio.sleep(1.0)
    await consumer.stop()
    assert got == 5, got

    await admin.list_consumer_groups()
    await admin.describe_consumer_groups(["golden-aiokafka"])
    await admin.delete_topics([GROUP_TOPIC])
    await admin.close()


def scenario_kcat(bootstrap: str, direct: str, recorder: Recorder) -> None:
    # kcat has no admin commands: create the topics with kafka-python, not recorded (Metadata
    # sends kafka-python through the proxy too).
    from kafka.admin import KafkaAdminClient, NewTopic

    recorder.paused = True
    admin = KafkaAdminClient(bootstrap_servers=direct)
    admin.create_topics([NewTopic(topic_for(c), 1, 1) for c in CODECS]
                        + [NewTopic(GROUP_TOPIC, 1, 1)], timeout_ms=10_000)
    admin.close()
    recorder.paused = False

    def kcat(*args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(["kcat", "-b", bootstrap, "-X", "client.id=golden-kcat", *args],
                              input=stdin, capture_output=True, check=True, timeout=60).stdout

    kcat("-L")
    for codec in CODECS:
        # kcat sets the same headers on every message and cannot set timestamps or per-message
        # headers; -Z turns the empty value into a null value.
        lines = b"".join(
            (r["key"] or "").encode() + b"\t" + (r["value"] or "").encode() + b"\n"
            for r in kcat_records(codec)
        )
        kcat("-P", "-t", topic_for(codec), "-p", "0", "-z", codec, "-K", "\t", "-Z",
             "-H", "h1=v1", "-H", "h2=v2", "-X", "linger.ms=200", stdin=lines)
    kcat("-P", "-t", GROUP_TOPIC, "-p", "0", "-K", ":",
         stdin=b"".join(b"g%d:group message %d\n" % (i, i) for i in range(5)))
    kcat("-C", "-t", topic_for("gzip"), "-p", "0", "-o", "beginning", "-e", "-q")
    kcat("-Q", "-t", f"{topic_for('gzip')}:0:1700000001001")
    kcat("-G", "golden-kcat", "-o", "beginning", "-c", "5", "-q",
         "-X", "heartbeat.interval.ms=300", GROUP_TOPIC)


def kcat_records(codec: str) -> list[dict[str, Any]]:
    out = []
    for r in records_for("kcat", codec):
        out.append({"key": r["key"] or "", "value": r["value"],
                     "headers": [["h1", "v1"], ["h2", "v2"]], "timestamp": None})
    # kcat -K with an empty key sends an empty (not null) key; -Z makes empty values null.
    out[2]["key"] = None  # -Z also sends empty keys as null
    return out


SCENARIOS: dict[str, Callable[[str, str, Recorder], None]] = {
    "kafka-python": scenario_kafka_python,
    "confluent-kafka": scenario_confluent,
    "aiokafka": scenario_aiokafka,
    "kcat": scenario_kcat,
}


def expected_records(client: str, codec: str) -> list[dict[str, Any]]:
    return kcat_records(codec) if client == "kcat" else records_for(client, codec)


# --------------------------------------------------------------------------------------------
# A small independent record-batch reader (for the cross-check only)


def crc32c(data: bytes) -> int:
    import crc32c as _crc

    return int(_crc.crc32c(data))


def find_batches(frame: bytes) -> list[tuple[int, int]]:
    """(start, end) of every v2 record batch in ``frame``, found by magic byte and CRC."""
    found = []
    i = 0
    while i + 61 <= len(frame):
        if frame[i + 16] == 2:
            length = struct.unpack_from(">i", frame, i + 8)[0]
            end = i + 12 + length
            if 49 <= length and end <= len(frame):
                crc = struct.unpack_from(">I", frame, i + 17)[0]
                if crc32c(frame[i + 21:end]) == crc:
                    found.append((i, end))
                    i = end
                    continue
        i += 1
    return found


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return (value >> 1) ^ -(value & 1), pos


def _decompress(codec: int, data: bytes) -> bytes:
    if codec == 0:
        return data
    if codec == 1:
        return gzip.decompress(data)
    if codec == 2:
        import snappy

        if data.startswith(b"\x82SNAPPY\x00"):  # xerial framing: 16-byte header, then blocks
            out, pos = bytearray(), 16
            while pos < len(data):
                n = struct.unpack_from(">i", data, pos)[0]
                out += snappy.uncompress(data[pos + 4:pos + 4 + n])
                pos += 4 + n
            return bytes(out)
        return bytes(snappy.uncompress(data))
    if codec == 3:
        import lz4.frame

        return bytes(lz4.frame.decompress(data))
    if codec == 4:
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(codec)


def read_batch(batch: bytes) -> tuple[int, list[dict[str, Any]]]:
    attributes = struct.unpack_from(">h", batch, 21)[0]
    first_ts = struct.unpack_from(">q", batch, 27)[0]
    count = struct.unpack_from(">i", batch, 57)[0]
    body = _decompress(attributes & 7, batch[61:])
    records, pos = [], 0

    def blob(pos: int) -> tuple[str | None, int]:
        n, pos = _varint(body, pos)
        if n < 0:
            return None, pos
        return body[pos:pos + n].decode(), pos + n

    for _ in range(count):
        _length, pos = _varint(body, pos)
        pos += 1  # attributes
        ts_delta, pos = _varint(body, pos)
        _off_delta, pos = _varint(body, pos)
        key, pos = blob(pos)
        value, pos = blob(pos)
        nh, pos = _varint(body, pos)
        headers = []
        for _ in range(nh):
            hk, pos = blob(pos)
            hv, pos = blob(pos)
            headers.append([hk, hv])
        records.append({"key": key, "value": value, "headers": headers,
                        "timestamp": first_ts + ts_delta})
    return attributes & 7, records


# --------------------------------------------------------------------------------------------
# Running and writing


def run_client(client: str) -> list[Exchange]:
    recorder = Recorder()
    proxy_port = free_port()
    with ReferenceKafka(advertised=f"127.0.0.1:{proxy_port}") as kafka:
        proxy = RecordingProxy(proxy_port, (kafka.host, kafka.port), recorder)
        try:
            SCENARIOS[client](f"127.0.0.1:{proxy_port}", kafka.bootstrap, recorder)
            time.sleep(0.5)
        finally:
            proxy.close()
    return [ex for ex in recorder.exchanges if ex.response is not None]


def trim(exchanges: list[Exchange]) -> list[Exchange]:
    """Drop exact duplicates (correlation id aside), keep a few per API and version."""
    seen: set[tuple[bytes, bytes]] = set()
    kept_per: dict[tuple[int, int], list[Exchange]] = {}
    for ex in sorted(exchanges, key=lambda e: e.seq):
        assert ex.response is not None
        sig = (ex.request[:4] + ex.request[8:], ex.response[4:])
        if sig in seen:
            continue
        seen.add(sig)
        kept_per.setdefault((ex.api_key, ex.api_version), []).append(ex)
    kept: list[Exchange] = []
    for (api_key, _), exs in kept_per.items():
        limit = KEEP.get(api_key, KEEP_DEFAULT)
        if api_key == 1 and len(exs) > limit:
            # Fetch: keep the first, then the ones that carried the most data.
            biggest = sorted(exs[1:], key=lambda e: -len(e.response or b""))[: limit - 1]
            exs = [exs[0], *biggest]
        kept += exs[:limit]
    return sorted(kept, key=lambda e: e.seq)


def write_frames(client: str, exchanges: list[Exchange]) -> None:
    folder = HERE / "frames" / client
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    index = []
    for n, ex in enumerate(exchanges):
        assert ex.response is not None
        stem = f"{n:03d}_{API_NAMES.get(ex.api_key, f'Api{ex.api_key}')}_v{ex.api_version}"
        (folder / f"{stem}.req").write_bytes(ex.request)
        (folder / f"{stem}.resp").write_bytes(ex.response)
        index.append({"api_key": ex.api_key, "api_version": ex.api_version,
                      "api_name": API_NAMES.get(ex.api_key, f"Api{ex.api_key}"),
                      "correlation_id": ex.correlation_id,
                      "request": f"{stem}.req", "response": f"{stem}.resp"})
    (folder / "index.json").write_text(json.dumps(index, indent=1) + "\n")


def write_batches(client: str, exchanges: list[Exchange]) -> None:
    folder = HERE / "batches"
    folder.mkdir(exist_ok=True)
    for codec in CODECS:
        topic = topic_for(codec).encode()
        want = expected_records(client, codec)
        for ex in exchanges:
            if ex.api_key != 0 or topic not in ex.request:
                continue
            spans = find_batches(ex.request)
            if not spans:
                continue
            start, end = spans[0][0], spans[-1][1]
            records_field = ex.request[start:end]
            got: list[dict[str, Any]] = []
            codecs = set()
            for s, e in spans:
                c, recs = read_batch(ex.request[s:e])
                codecs.add(c)
                got += recs
            if len(got) != len(want):
                continue
            assert codecs == {CODEC_IDS[codec]}, (client, codec, codecs)
            for g, w in zip(got, want, strict=True):
                if w["timestamp"] is None:
                    w["timestamp"] = g["timestamp"]  # the client chose it
                assert g == w, (client, codec, g, w)
            (folder / f"{client}-{codec}.bin").write_bytes(records_field)
            meta = {
                "client": client, "codec": codec, "compression": CODEC_IDS[codec],
                "topic": topic_for(codec), "batches": len(spans),
                "encoding": "keys, values and header values are utf-8 text; null is null",
            }
            lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in meta.items()]
            recs = ",\n".join(f"  {json.dumps(r)}" for r in want)
            text = "{\n" + "\n".join(lines) + f'\n "records": [\n{recs}\n ]\n}}\n'
            assert json.loads(text)["records"] == want
            (folder / f"{client}-{codec}.json").write_text(text)
            break
        else:
            raise AssertionError(f"{client}: no Produce with all {codec} records")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clients", nargs="*", help=f"some of {CLIENTS} (default: all)")
    args = parser.parse_args()
    for client in args.clients or CLIENTS:
        t0 = time.monotonic()
        exchanges = run_client(client)
        write_batches(client, exchanges)
        kept = trim(exchanges)
        write_frames(client, kept)
        by_api: dict[str, int] = {}
        for ex in kept:
            name = f"{API_NAMES.get(ex.api_key, ex.api_key)} v{ex.api_version}"
            by_api[name] = by_api.get(name, 0) + 1
        print(f"{client}: {len(exchanges)} exchanges, kept {len(kept)} "
              f"({time.monotonic() - t0:.1f}s): {by_api}", flush=True)
    versions = client_versions()
    (HERE / "versions.json").write_text(json.dumps(versions, indent=1) + "\n")
    print(versions)
    return 0


def client_versions() -> dict[str, str]:
    import aiokafka
    import confluent_kafka
    import kafka

    kcat = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    kcat_line = next((line for line in kcat.splitlines() if line.startswith("Version")), "")
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    return {
        "apache-kafka": KAFKA_VERSION,
        "java": java.splitlines()[0] if java else "",
        "kafka-python": kafka.__version__,
        "confluent-kafka": (
            f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
        ),
        "aiokafka": aiokafka.__version__,
        "kcat": kcat_line.split(" (")[0].replace("Version ", "")
        + (f" (librdkafka {kcat_line.split('librdkafka ')[1].split()[0]})"
           if "librdkafka " in kcat_line else ""),
    }


if __name__ == "__main__":
    sys.exit(main())
