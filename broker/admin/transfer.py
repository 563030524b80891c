"""Producing and consuming records for the CLI: Produce and Fetch on our own codecs.

`Producer` buffers records per partition and sends one v2 batch per partition in a
Produce request to each leader when a partition's buffer reaches `batch_bytes` or on
`flush`. The partition is the one asked for, else Kafka's default for a keyed record
(``murmur2(key) & 0x7fffffff % partitions``, the Java client's, so the same key lands on
the same partition whichever of the two wrote it), else a sticky partition that moves on
after each full batch. acks=0 sends without waiting for an answer, as Kafka's producer
does. A partition error raises `KafkaError` with the record error message when the
broker gave one.

`Consumer` fetches one topic (some or all of its partitions) from each leader, from a
start position per partition: an offset, ``earliest``, ``latest``, or the group's committed
offset (with `reset` for partitions without one, Kafka's `auto.offset.reset`).
OFFSET_OUT_OF_RANGE moves a partition to `reset` too. Control batches are skipped; with
read_committed, the batches of aborted transactions are skipped as Kafka's consumer does
(the fetch response's aborted transactions, dropped at each abort marker). Positions move
only as records are handed out by `poll`, so a consumer stopped after N records commits
exactly what it printed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from broker.admin.client import AdminClient
from broker.admin.errors import AdminError, KafkaError, check
from broker.admin.formats import Headers, OutputRecord
from broker.admin.groups import commit_offsets, committed_offsets
from broker.admin.topics import EARLIEST, LATEST, list_offsets
from protocol.errors import ProtocolError
from protocol.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from protocol.records import (
    Compression,
    ControlType,
    TimestampType,
    build_batch,
    iter_batches,
    iter_records,
    parse_control_record,
)

__all__ = ["Consumer", "Producer", "murmur2", "partition_for_key"]

PRODUCE = 0
FETCH = 1
OFFSET_OUT_OF_RANGE = 1


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` (a signed 32-bit result)."""
    mask = 0xFFFFFFFF
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    size = 16 + len(key or b"") + len(value or b"")
    return size + sum(8 + len(k) + len(v or b"") for k, v in headers)


class Producer:
    """Batching producer for one topic (see the module docstring)."""

    def __init__(self, client: AdminClient, topic: str, *, acks: int = -1,
                 compression: Compression = Compression.NONE, batch_bytes: int = 256 * 1024,
                 timeout_ms: int = 30_000, create_topic: bool = True) -> None:
        if acks not in (-1, 0, 1):
            raise AdminError(f"acks must be -1 (all), 0 or 1, not {acks}")
        self.client = client
        self.topic = topic
        self.acks = acks
        self.compression = compression
        self.batch_bytes = batch_bytes
        self.timeout_ms = timeout_ms
        if create_topic:
            client.metadata([topic], auto_create=True)
        self.leaders = self._wait_for_leaders()
        self.partitions = len(self.leaders)
        self._pending: dict[int, list[tuple[bytes | None, bytes | None, Headers, int]]] = {}
        self._pending_bytes: dict[int, int] = {}
        self._sticky = 0
        self.sent = 0

    def _wait_for_leaders(self) -> dict[int, int]:
        deadline = time.monotonic() + self.timeout_ms / 1000
        while True:
            try:
                leaders = self.client.partition_leaders(self.topic)
            except KafkaError as exc:
                # LEADER_NOT_AVAILABLE while an auto-created topic gets its leaders.
                if exc.code != 5 or time.monotonic() > deadline:
                    raise
                leaders = {}
            if leaders and all(leader >= 0 for leader in leaders.values()):
                return leaders
            if time.monotonic() > deadline:
                raise KafkaError(5, context=f"topic {self.topic}")
            time.sleep(0.05)

    def send(self, key: bytes | None, value: bytes | None, headers: Headers | None = None, *,
             partition: int | None = None, timestamp: int | None = None) -> int:
        """Buffer one record; returns its partition. Sends when a batch is full."""
        headers = headers or []
        if partition is None:
            partition = (partition_for_key(key, self.partitions) if key is not None
                         else self._sticky)
        elif not 0 <= partition < self.partitions:
            raise KafkaError(3, f"Partition {partition} of topic {self.topic} does not exist "
                             f"(it has {self.partitions}).")
        ts = timestamp if timestamp is not None else time.time_ns() // 1_000_000
        self._pending.setdefault(partition, []).append((key, value, headers, ts))
        size = self._pending_bytes.get(partition, 0) + _record_size(key, value, headers)
        self._pending_bytes[partition] = size
        if size >= self.batch_bytes:
            self._send({partition: self._pending.pop(partition)})
            self._pending_bytes.pop(partition)
            if key is None and partition == self._sticky:
                self._sticky = (self._sticky + 1) % self.partitions
        return partition

    def flush(self) -> None:
        if self._pending:
            pending, self._pending, self._pending_bytes = self._pending, {}, {}
            self._send(pending)

    def _send(self, batches: dict[int, list[tuple[bytes | None, bytes | None, Headers, int]]]
              ) -> None:
        by_leader: dict[int, list[PartitionProduceData]] = {}
        for partition, records in sorted(batches.items()):
            batch = build_batch(records, compression=self.compression)
            by_leader.setdefault(self.leaders[partition], []).append(
                PartitionProduceData(index=partition, records=batch))
        for leader, data in by_leader.items():
            request = ProduceRequest(acks=self.acks, timeout_ms=self.timeout_ms,
                                     topic_data=[TopicProduceData(name=self.topic,
                                                                  partition_data=data)])
            conn = self.client.node_connection(leader)
            if self.acks == 0:
                conn.send_only(PRODUCE, request, hi=12)
                continue
            response = conn.request(PRODUCE, request, hi=12)
            for topic in response.responses:
                for p in topic.partition_responses:
                    detail = p.error_message or "; ".join(
                        e.batch_index_error_message or "" for e in p.record_errors) or None
                    check(p.error_code, detail, f"{self.topic}-{p.index}")
        self.sent += sum(len(r) for r in batches.values())


@dataclass
class _Position:
    offset: int
    after_buffer: int | None = None


class Consumer:
    """Fetches records of one topic; `poll` hands them out (see the module docstring)."""

    def __init__(self, client: AdminClient, topic: str, *, partitions: Iterable[int] | None = None,
                 start: str | int = "latest", group: str | None = None, reset: str = "latest",
                 read_committed: bool = False, max_wait_ms: int = 500,
                 max_bytes: int = 50 * 1024 * 1024, partition_max_bytes: int = 1024 * 1024
                 ) -> None:
        self.client = client
        self.topic = topic
        self.group = group
        self.reset = reset
        self.read_committed = read_committed
        self.max_wait_ms = max_wait_ms
        self.max_bytes = max_bytes
        self.partition_max_bytes = partition_max_bytes
        self.leaders = client.partition_leaders(topic)
        chosen = sorted(self.leaders) if partitions is None else sorted(set(partitions))
        unknown = [p for p in chosen if p not in self.leaders]
        if unknown:
            raise KafkaError(3, f"Partition {unknown[0]} of topic {topic} does not exist.")
        self.positions: dict[int, _Position] = {}
        committed = committed_offsets(client, group) if group else {}
        wanted: dict[int, str | int] = {}
        for p in chosen:
            if group and (topic, p) in committed:
                wanted[p] = committed[(topic, p)]
            elif group:
                wanted[p] = reset
            else:
                wanted[p] = start
        self._seek(wanted)
        self._buffer: deque[OutputRecord] = deque()

    def _seek(self, wanted: dict[int, str | int]) -> None:
        for special, timestamp in (("earliest", EARLIEST), ("latest", LATEST)):
            parts = {(self.topic, p): self.leaders[p] for p, w in wanted.items() if w == special}
            if parts:
                for (_, p), offset in list_offsets(self.client, parts, timestamp).items():
                    self.positions[p] = _Position(offset)
        for p, w in wanted.items():
            if isinstance(w, int):
                self.positions[p] = _Position(w)

    def end_offsets(self) -> dict[int, int]:
        parts = {(self.topic, p): self.leaders[p] for p in self.positions}
        return {p: o for (_, p), o in list_offsets(self.client, parts, LATEST).items()}

    def poll(self, limit: int | None = None) -> list[OutputRecord]:
        """Up to `limit` records; fetches (waiting up to `max_wait_ms`) when none are
        buffered. An empty list means nothing arrived in that time."""
        if not self._buffer:
            self._fetch()
        out: list[OutputRecord] = []
        while self._buffer and (limit is None or len(out) < limit):
            record = self._buffer.popleft()
            self.positions[record.partition].offset = record.offset + 1
            out.append(record)
        pending = {r.partition for r in self._buffer}
        for p, pos in self.positions.items():
            if p not in pending and pos.after_buffer is not None:
                pos.offset = max(pos.offset, pos.after_buffer)
                pos.after_buffer = None
        return out

    def commit(self) -> None:
        """Commit the position of every partition for the group (nothing without one)."""
        if self.group:
            commit_offsets(self.client, self.group,
                           {(self.topic, p): pos.offset for p, pos in self.positions.items()})

    def _fetch(self) -> None:
        by_leader: dict[int, list[FetchPartition]] = {}
        for p, pos in sorted(self.positions.items()):
            by_leader.setdefault(self.leaders[p], []).append(FetchPartition(
                partition=p, fetch_offset=pos.offset,
                partition_max_bytes=self.partition_max_bytes))
        resets: dict[int, str | int] = {}
        for leader, partitions in by_leader.items():
            request = FetchRequest(
                replica_id=-1, max_wait_ms=self.max_wait_ms, min_bytes=1,
                max_bytes=self.max_bytes, isolation_level=1 if self.read_committed else 0,
                session_id=0, session_epoch=-1,
                topics=[FetchTopic(topic=self.topic, partitions=partitions)])
            response = self.client.send(FETCH, request, node=leader, hi=12)
            check(response.error_code, context="Fetch")
            for topic in response.responses:
                for data in topic.partitions:
                    p = data.partition_index
                    if data.error_code == OFFSET_OUT_OF_RANGE:
                        resets[p] = self.reset
                        continue
                    check(data.error_code, context=f"{self.topic}-{p}")
                    self._take(p, data)
        if resets:
            self._seek(resets)

    def _take(self, partition: int, data: object) -> None:
        records = getattr(data, "records", None)
        if not records:
            return
        position = self.positions[partition].offset
        aborted = sorted((a.first_offset, a.producer_id)
                         for a in (getattr(data, "aborted_transactions", None) or []))
        aborted_pids: set[int] = set()
        next_offset = position
        buf = memoryview(records)
        try:
            for pos, header in iter_batches(buf):
                if header.last_offset < position:
                    continue
                next_offset = max(next_offset, header.next_offset)
                if self.read_committed and header.has_producer_id:
                    while aborted and aborted[0][0] <= header.last_offset:
                        aborted_pids.add(aborted.pop(0)[1])
                    if header.is_control:
                        for record in iter_records(buf, pos, header):
                            if parse_control_record(record)[0] == ControlType.ABORT:
                                aborted_pids.discard(header.producer_id)
                        continue
                    if header.is_transactional and header.producer_id in aborted_pids:
                        continue
                if header.is_control:
                    continue
                ts_type = ("LogAppendTime" if header.timestamp_type
                           == TimestampType.LOG_APPEND_TIME else "CreateTime")
                for record in iter_records(buf, pos, header):
                    if record.offset < position:
                        continue
                    self._buffer.append(OutputRecord(
                        self.topic, partition, record.offset, record.timestamp, ts_type,
                        record.key, record.value,
                        [(h.key, h.value) for h in record.headers]))
        except ProtocolError as exc:
            raise AdminError(f"corrupt records from {self.topic}-{partition}: {exc}") from None
        self.positions[partition].after_buffer = next_offset
