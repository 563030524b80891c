"""The confluent-kafka (librdkafka) driver of the compatibility matrix (compat/SCENARIOS.md).

Every scenario uses confluent-kafka's own API (`AdminClient`, `Producer`, `Consumer`) with
librdkafka's default settings, except where the scenario asks otherwise:
`message.max.bytes` raised for the 1,000,000-byte record (librdkafka's default is 1,000,000,
less than that record with its overhead), `compression.type` for the codec scenarios,
`enable.idempotence` (off by default in librdkafka), `transactional.id` and
`isolation.level`, and `auto.offset.reset=earliest` for group members, which must read from
the beginning (librdkafka's default is `latest`).

librdkafka's `Consumer` needs a `group.id` even when it only uses `assign()`; the readers
are given one of their own and commit nothing. Reading a partition to its end:
`read_partition` assigns it at `OFFSET_BEGINNING` with `enable.partition.eof`, and polls
until the partition-EOF event (the end offset at the time) for a position at or past the
end offset, bounded by `driverkit.TIMEOUT_S`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
import driverkit as kit  # noqa: E402
from driverkit import Record, Run, check, check_equal  # noqa: E402

T = kit.TIMEOUT_S


def admin(run: Run) -> AdminClient:
    return AdminClient({"bootstrap.servers": run.bootstrap})


def create_topic(run: Run, name: str, partitions: int = 1,
                 configs: dict[str, str] | None = None) -> None:
    client = admin(run)  # held until the future is done: a dropped client fails its futures
    futures = client.create_topics([NewTopic(name, partitions, 1, config=configs or {})],
                                   operation_timeout=T, request_timeout=T)
    futures[name].result(timeout=T)


def send_all(prod: Producer, topic: str, records: list[Record],
             partition: int | Callable[[int], int] = 0) -> list[Any]:
    """Produce the records and wait for every delivery report; the messages, in order."""
    reports: list[Any] = [None] * len(records)
    errors: list[Any] = []

    def delivered(i: int) -> Callable[[Any, Any], None]:
        def callback(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(err)
            reports[i] = msg
        return callback

    for i, r in enumerate(records):
        kwargs: dict[str, Any] = {}
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        if r.headers:
            kwargs["headers"] = list(r.headers)
        while True:
            try:
                prod.produce(topic, value=r.value, key=r.key,
                             partition=partition(i) if callable(partition) else partition,
                             on_delivery=delivered(i), **kwargs)
                break
            except BufferError:  # the local queue is full: serve delivery reports first
                prod.poll(0.1)
    left = prod.flush(T)
    check_equal("messages not delivered", left, 0)
    check(not errors, f"delivery errors: {errors[:3]}")
    return reports


def group_consumer(run: Run, group: str, **config: Any) -> Consumer:
    return Consumer({"bootstrap.servers": run.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, **config})


def read_partition(run: Run, topic: str, partition: int = 0,
                   config: dict[str, Any] | None = None) -> list[Any]:
    """Every record of the partition from its beginning to its end offset."""
    cons = Consumer({"bootstrap.servers": run.bootstrap, "enable.auto.commit": False,
                     "group.id": f"compat-confluent-kafka-reader-{run.run_id}",
                     "enable.partition.eof": True, **(config or {})})
    try:
        tp = TopicPartition(topic, partition)
        _, end = cons.get_watermark_offsets(tp, timeout=T)
        cons.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        records: list[Any] = []
        deadline = time.monotonic() + T
        while True:
            check(time.monotonic() < deadline,
                  f"{topic}[{partition}]: read {len(records)} records, no end of partition "
                  f"at offset {end} after {T} s")
            msg = cons.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                if (msg.offset() or 0) >= end:
                    return records
                continue
            records.append(msg)
    finally:
        cons.close()


def as_record(msg: Any) -> Record:
    return Record(msg.key(), msg.value(), tuple(msg.headers() or ()), msg.timestamp()[1])


def codec_of(codec: str) -> dict[str, str]:
    return {"compression.type": codec}


# ---------------------------------------------------------------------------- scenarios


def metadata(run: Run) -> None:
    topic = run.topic("metadata")
    create_topic(run, topic, 2)
    client = admin(run)
    meta = client.list_topics(timeout=T)
    check_equal("brokers", [(b.host, b.port) for b in meta.brokers.values()],
                [(run.host, run.port)])
    kit.eventually(f"{topic}'s partition count",
                   lambda: len(getattr(client.list_topics(topic=topic, timeout=T).topics.get(
                       topic), "partitions", {})), 2)


def topics_admin(run: Run) -> None:
    topic = run.topic("topics-admin")
    client = admin(run)
    create_topic(run, topic, 3, {"retention.ms": "3600000"})
    (node,) = client.list_topics(timeout=T).brokers

    def leaders() -> list[int]:
        meta = client.list_topics(topic=topic, timeout=T)
        return [p.leader for _, p in sorted(meta.topics[topic].partitions.items())]

    def retention() -> str:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        configs = client.describe_configs([resource], request_timeout=T)[resource].result(T)
        return str(configs["retention.ms"].value)

    kit.eventually("partition leaders", leaders, [node] * 3)
    kit.eventually("retention.ms", retention, "3600000")
    alter = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    for future in client.incremental_alter_configs([alter], request_timeout=T).values():
        future.result(T)
    kit.eventually("retention.ms after the alter", retention, "7200000")

    client.create_partitions([NewPartitions(topic, 5)], request_timeout=T)[topic].result(T)
    kit.eventually("partition leaders after growing", leaders, [node] * 5)

    client.delete_topics([topic], operation_timeout=T, request_timeout=T)[topic].result(T)
    deadline = time.monotonic() + T
    while topic in client.list_topics(timeout=T).topics:
        check(time.monotonic() < deadline, f"{topic} still listed after its deletion")
        time.sleep(0.2)


def produce_consume(run: Run) -> None:
    topic = run.topic("produce-consume")
    create_topic(run, topic)
    want = kit.produce_consume_records()
    prod = Producer({"bootstrap.servers": run.bootstrap,
                     "message.max.bytes": 2 * kit.BIG_RECORD_BYTES})
    acks = send_all(prod, topic, want)
    check_equal("acknowledged offsets", [m.offset() for m in acks], [0, 1, 2, 3])
    got = read_partition(run, topic)
    check_equal("offsets read", [m.offset() for m in got], [0, 1, 2, 3])
    kit.check_records("produce-consume", [as_record(m) for m in got], want)


def produce_codec(run: Run, codec: str) -> None:
    topic = run.codec_topic(codec)
    create_topic(run, topic)
    prod = Producer({"bootstrap.servers": run.bootstrap, **codec_of(codec)})
    acks = send_all(prod, topic, kit.codec_records(codec))
    check_equal("acknowledged offsets", [m.offset() for m in acks],
                list(range(kit.CODEC_RECORDS)))


def consume_codec(run: Run, codec: str, writer: str) -> None:
    got = read_partition(run, run.codec_topic(codec, writer))
    check_equal("offsets", [m.offset() for m in got], list(range(kit.CODEC_RECORDS)))
    kit.check_records(f"{codec} from {writer}", [as_record(m) for m in got],
                      kit.codec_records(codec))


def list_offsets_by_time(run: Run) -> None:
    topic = run.topic("list-offsets-by-time")
    create_topic(run, topic, 1, {"retention.ms": "-1"})  # the records are from 2023
    send_all(Producer({"bootstrap.servers": run.bootstrap}), topic,
             [Record(b"k", f"v{i}".encode(), (), t) for i, t in enumerate(kit.LIST_OFFSETS_TIMES)])
    cons = group_consumer(run, run.group("list-offsets-by-time"))
    try:
        tp = TopicPartition(topic, 0)
        check_equal("earliest, latest", cons.get_watermark_offsets(tp, timeout=T), (0, 3))
        for when, want in ((1_700_000_000_500, 1), (1_700_000_002_000, 2),
                           (1_700_000_003_000, -1)):
            (found,) = cons.offsets_for_times([TopicPartition(topic, 0, when)], timeout=T)
            check_equal(f"offset for time {when}", found.offset, want)
    finally:
        cons.close()


class Member(threading.Thread):
    """A group member polling in its own thread, committing each message it consumes."""

    def __init__(self, run: Run, topic: str, group: str, seen: list[tuple[int, int]]) -> None:
        super().__init__(daemon=True)
        self.consumer = group_consumer(run, group)
        self.consumer.subscribe([topic])
        self.seen = seen
        self.stop = threading.Event()
        self.assignment: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                msg = self.consumer.poll(0.2)
                if msg is not None:
                    if msg.error():
                        raise KafkaException(msg.error())
                    self.seen.append((msg.partition() or 0, msg.offset() or 0))
                    self.consumer.commit(message=msg, asynchronous=False)
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.consumer.close()


def consumer_group(run: Run) -> None:
    topic, group = run.topic("consumer-group"), run.group("group")
    create_topic(run, topic, 6)
    send_all(Producer({"bootstrap.servers": run.bootstrap}), topic,
             [Record(None, f"{i}".encode()) for i in range(600)], partition=lambda i: i % 6)
    seen: list[tuple[int, int]] = []
    members: list[Member] = []
    deadline = time.monotonic() + 50
    client = admin(run)
    try:
        for _ in range(3):
            member = Member(run, topic, group, seen)
            member.start()
            members.append(member)
            while not member.assignment:
                check(time.monotonic() < deadline, "a member got no partitions")
                check(all(m.error is None for m in members), f"a member failed: {members}")
                time.sleep(0.05)
        while not all(m.assignment for m in members):
            check(time.monotonic() < deadline, "the three members never all had partitions")
            time.sleep(0.05)
        members[0].stop.set()
        members[0].join(T)
        rest = members[1:]

        def committed() -> dict[int, int]:
            request = [ConsumerGroupTopicPartitions(group)]
            (future,) = client.list_consumer_group_offsets(request, request_timeout=T).values()
            return {tp.partition: tp.offset for tp in future.result(T).topic_partitions}

        while committed() != {p: 100 for p in range(6)} or \
                set().union(*(m.assignment for m in rest)) != set(range(6)):
            for m in members:
                check(m.error is None, f"a member failed: {m.error!r}")
            check(time.monotonic() < deadline,
                  f"committed offsets {committed()}, assignments "
                  f"{[sorted(m.assignment) for m in rest]}")
            time.sleep(0.1)
        check_equal("records consumed", set(seen), {(i % 6, i // 6) for i in range(600)})
        first, second = (m.assignment for m in rest)
        check(not first & second, f"partitions owned by both members: {first & second}")
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(T)


def resume_committed(run: Run) -> None:
    topic, group = run.topic("resume-committed"), run.group("resume-committed")
    create_topic(run, topic)
    send_all(Producer({"bootstrap.servers": run.bootstrap}), topic,
             [Record(None, f"{i}".encode()) for i in range(10)])

    def poll_until(cons: Consumer, count: int) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + T
        while len(got) < count:
            check(time.monotonic() < deadline, f"read {len(got)} of {count} records")
            msg = cons.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(msg)
        return got

    first = group_consumer(run, group)
    try:
        first.subscribe([topic])
        got = poll_until(first, 4)
        check_equal("first consumer's offsets", [m.offset() for m in got], [0, 1, 2, 3])
        first.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    finally:
        first.close()
    second = group_consumer(run, group)
    try:
        second.subscribe([topic])
        got = poll_until(second, 6)
        check_equal("second consumer's offsets", [m.offset() for m in got], list(range(4, 10)))
        check_equal("values", [m.value() for m in got], [f"{i}".encode() for i in range(4, 10)])
    finally:
        second.close()


def idempotent_producer(run: Run) -> None:
    topic = run.topic("idempotent-producer")
    create_topic(run, topic, 3)
    prod = Producer({"bootstrap.servers": run.bootstrap, "enable.idempotence": True})
    send_all(prod, topic, [Record(None, f"{i}".encode()) for i in range(1000)],
             partition=lambda i: i % 3)
    for p in range(3):
        values = [int(m.value()) for m in read_partition(run, topic, p)]
        check_equal(f"partition {p} values", values, list(range(p, 1000, 3)))


def transactions(run: Run) -> None:
    topic = run.topic("transactions")
    create_topic(run, topic)
    prod = Producer({"bootstrap.servers": run.bootstrap,
                     "transactional.id": f"compat-confluent-kafka-tx-{run.run_id}"})
    prod.init_transactions(T)
    prod.begin_transaction()
    send_all(prod, topic, [Record(None, f"committed {i}".encode()) for i in range(10)])
    prod.commit_transaction(T)
    prod.begin_transaction()
    send_all(prod, topic, [Record(None, f"aborted {i}".encode()) for i in range(10)])
    prod.abort_transaction(T)
    committed = [f"committed {i}".encode() for i in range(10)]
    aborted = [f"aborted {i}".encode() for i in range(10)]
    got = [m.value() for m in read_partition(run, topic, 0,
                                              {"isolation.level": "read_committed"})]
    check_equal("read_committed values", got, committed)
    got = [m.value() for m in read_partition(run, topic, 0,
                                              {"isolation.level": "read_uncommitted"})]
    check_equal("read_uncommitted values", got, committed + aborted)


def delete_records(run: Run) -> None:
    topic = run.topic("delete-records")
    create_topic(run, topic)
    send_all(Producer({"bootstrap.servers": run.bootstrap}), topic,
             [Record(None, f"{i}".encode()) for i in range(10)])
    tp = TopicPartition(topic, 0, 5)
    client = admin(run)
    (future,) = client.delete_records([tp], request_timeout=T, operation_timeout=T).values()
    check_equal("low watermark after DeleteRecords", future.result(T).low_watermark, 5)
    cons = group_consumer(run, run.group("delete-records"))
    try:
        low, _ = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=T)
        check_equal("earliest offset", low, 5)
    finally:
        cons.close()
    got = read_partition(run, topic)
    check_equal("offsets read", [m.offset() for m in got], [5, 6, 7, 8, 9])


DRIVER = kit.Driver("confluent-kafka", {
    "metadata": metadata,
    "topics-admin": topics_admin,
    "produce-consume": produce_consume,
    "produce-codec": produce_codec,
    "consume-codec": consume_codec,
    "list-offsets-by-time": list_offsets_by_time,
    "consumer-group": consumer_group,
    "resume-committed": resume_committed,
    "idempotent-producer": idempotent_producer,
    "transactions": transactions,
    "delete-records": delete_records,
})

if __name__ == "__main__":
    sys.exit(DRIVER.main())
