"""The kafka-python driver of the compatibility matrix (compat/SCENARIOS.md).

Every scenario uses kafka-python's own API (`KafkaAdminClient`, `KafkaProducer`,
`KafkaConsumer`) with its default settings, except where the scenario asks otherwise:
`max_request_size` raised for the 1,000,000-byte record, `compression_type` for the codec
scenarios, `transactional_id` and `isolation_level` for transactions (whose producer blocks
for at most `driverkit.TIMEOUT_S`, not the default 60 s, to keep the scenario within its
budget). kafka-python 3 turns idempotence on by default; `idempotent-producer` sets it anyway,
as the scenario says.

What kafka-python cannot express: a record whose key and value are both null (`send()` raises
"Need at least one: key or value"). `produce-consume` leaves that record out, checks the other
three at offsets 0..2, and passes with a note saying so.

Reading a partition to its end: `read_partition` assigns the partition, seeks to the
beginning and polls until the consumer's position reaches the end offset it was told
(`end_offsets`, which is the last stable offset under read_committed), bounded by
`driverkit.TIMEOUT_S`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.structs import OffsetAndMetadata

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
import driverkit as kit  # noqa: E402
from driverkit import Record, Run, check, check_equal  # noqa: E402

TIMEOUT_MS = kit.TIMEOUT_S * 1000


def admin(run: Run) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=run.bootstrap, client_id="compat-kafka-python")


def create_topic(run: Run, name: str, partitions: int = 1,
                 configs: dict[str, str] | None = None) -> None:
    client = admin(run)
    try:
        client.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})],
                             timeout_ms=TIMEOUT_MS)
        client.wait_for_topics([name], timeout_ms=TIMEOUT_MS)
    finally:
        client.close()


def producer(run: Run, **config: Any) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=run.bootstrap, **config)


def send_all(prod: KafkaProducer, topic: str, records: list[Record],
             partition: int | Callable[[int], int] = 0) -> list[Any]:
    """Send the records and wait for every acknowledgement; the RecordMetadata, in order."""
    futures = [prod.send(topic, key=r.key, value=r.value, headers=list(r.headers),
                         timestamp_ms=r.timestamp,
                         partition=partition(i) if callable(partition) else partition)
               for i, r in enumerate(records)]
    prod.flush(timeout=kit.TIMEOUT_S)
    return [f.get(timeout=kit.TIMEOUT_S) for f in futures]


def consumer(run: Run, **config: Any) -> KafkaConsumer:
    config.setdefault("auto_offset_reset", "earliest")
    return KafkaConsumer(bootstrap_servers=run.bootstrap, **config)


def read_partition(run: Run, topic: str, partition: int = 0, **config: Any) -> list[Any]:
    """Every record of the partition from its beginning to its end offset."""
    cons = consumer(run, enable_auto_commit=False, **config)
    try:
        tp = TopicPartition(topic, partition)
        cons.assign([tp])
        cons.seek_to_beginning(tp)
        end = cons.end_offsets([tp], timeout_ms=TIMEOUT_MS)[tp]
        records: list[Any] = []
        deadline = time.monotonic() + kit.TIMEOUT_S
        while cons.position(tp, timeout_ms=TIMEOUT_MS) < end:
            check(time.monotonic() < deadline,
                  f"{topic}[{partition}]: read {len(records)} records, position "
                  f"{cons.position(tp)} of end offset {end} after {kit.TIMEOUT_S} s")
            for batch in cons.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        cons.close()


def as_record(rec: Any) -> Record:
    return Record(rec.key, rec.value, tuple((k, v) for k, v in rec.headers or ()),
                  rec.timestamp)


# ---------------------------------------------------------------------------- scenarios


def metadata(run: Run) -> None:
    topic = run.topic("metadata")
    create_topic(run, topic, 2)
    client = admin(run)
    try:
        brokers = client.describe_cluster()["brokers"]
        check_equal("brokers", len(brokers), 1)
        check_equal("broker address", (brokers[0]["host"], brokers[0]["port"]),
                    (run.host, run.port))
        check(topic in client.list_topics(), f"{topic} is not in the topic list")
        (described,) = client.describe_topics([topic])
        check_equal("partition count", len(described["partitions"]), 2)
    finally:
        client.close()


def topics_admin(run: Run) -> None:
    topic = run.topic("topics-admin")
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    create_topic(run, topic, 3, {"retention.ms": "3600000"})
    client = admin(run)
    try:
        node = client.describe_cluster()["brokers"][0]["broker_id"]

        def leaders() -> list[int]:
            (described,) = client.describe_topics([topic])
            return [p["leader_id"] for p in described["partitions"]]

        def retention() -> str:
            configs = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            return str(configs["topic"][topic]["retention.ms"]["value"])

        kit.eventually("partition leaders", leaders, [node] * 3)
        kit.eventually("retention.ms", retention, "3600000")
        resource.configs = {"retention.ms": "7200000"}
        client.alter_configs([resource])
        kit.eventually("retention.ms after the alter", retention, "7200000")

        client.create_partitions({topic: NewPartitions(5)}, timeout_ms=TIMEOUT_MS)
        kit.eventually("partition leaders after growing", leaders, [node] * 5)

        client.delete_topics([topic], timeout_ms=TIMEOUT_MS)
        deadline = time.monotonic() + kit.TIMEOUT_S
        while topic in client.list_topics():
            check(time.monotonic() < deadline, f"{topic} still listed after its deletion")
            time.sleep(0.2)
    finally:
        client.close()


def produce_consume(run: Run) -> str:
    topic = run.topic("produce-consume")
    create_topic(run, topic)
    want = [r for r in kit.produce_consume_records() if r.key is not None or r.value is not None]
    prod = producer(run, max_request_size=2 * kit.BIG_RECORD_BYTES)
    try:
        acks = send_all(prod, topic, want)
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    check_equal("acknowledged offsets", [m.offset for m in acks], [0, 1, 2])
    got = read_partition(run, topic)
    check_equal("offsets read", [r.offset for r in got], [0, 1, 2])
    kit.check_records("produce-consume", [as_record(r) for r in got], want)
    return ("kafka-python cannot send a record whose key and value are both null (send() "
            "raises 'Need at least one: key or value'); the other three records were checked")


def produce_codec(run: Run, codec: str) -> None:
    topic = run.codec_topic(codec)
    create_topic(run, topic)
    prod = producer(run, compression_type=None if codec == "none" else codec)
    try:
        acks = send_all(prod, topic, kit.codec_records(codec))
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    check_equal("acknowledged offsets", [m.offset for m in acks], list(range(kit.CODEC_RECORDS)))


def consume_codec(run: Run, codec: str, writer: str) -> None:
    got = read_partition(run, run.codec_topic(codec, writer))
    check_equal("offsets", [r.offset for r in got], list(range(kit.CODEC_RECORDS)))
    kit.check_records(f"{codec} from {writer}", [as_record(r) for r in got],
                      kit.codec_records(codec))


def list_offsets_by_time(run: Run) -> None:
    topic = run.topic("list-offsets-by-time")
    create_topic(run, topic, 1, {"retention.ms": "-1"})  # the records are from 2023
    prod = producer(run)
    try:
        send_all(prod, topic, [Record(b"k", f"v{i}".encode(), (), t)
                               for i, t in enumerate(kit.LIST_OFFSETS_TIMES)])
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    cons = consumer(run)
    try:
        tp = TopicPartition(topic, 0)
        check_equal("earliest", cons.beginning_offsets([tp], TIMEOUT_MS)[tp], 0)
        check_equal("latest", cons.end_offsets([tp], TIMEOUT_MS)[tp], 3)
        for when, want in ((1_700_000_000_500, 1), (1_700_000_002_000, 2),
                           (1_700_000_003_000, None)):
            found = cons.offsets_for_times({tp: when}, TIMEOUT_MS)[tp]
            check_equal(f"offset for time {when}", None if found is None else found.offset, want)
    finally:
        cons.close()


def prime_metadata(cons: KafkaConsumer, topic: str) -> None:
    """Have a subscribed consumer learn its topic's partitions before it first joins.

    kafka-python 3.0.12 can drop the result of a rebalance it led when the rebalance was
    started by new metadata and completed while `poll()` was not waiting for it; the member
    then never heartbeats again and is expired. A first assignment made with the topic's
    partitions known takes that path away.
    """
    check(topic in cons.topics(), f"topic {topic} missing from the metadata")


class Member(threading.Thread):
    """A group member polling in its own thread, committing after each poll that got records."""

    def __init__(self, run: Run, topic: str, group: str, seen: list[tuple[int, int]]) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer(run, group_id=group, enable_auto_commit=False)
        self.consumer.subscribe([topic])
        prime_metadata(self.consumer, topic)
        self.seen = seen
        self.stop = threading.Event()
        self.assignment: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                polled = self.consumer.poll(timeout_ms=200)
                for batch in polled.values():
                    self.seen.extend((r.partition, r.offset) for r in batch)
                if polled:
                    self.consumer.commit()
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
        except BaseException as exc:  # reported by the scenario
            self.error = exc
        finally:
            self.consumer.close()


def consumer_group(run: Run) -> None:
    topic, group = run.topic("consumer-group"), run.group("group")
    create_topic(run, topic, 6)
    prod = producer(run)
    try:
        send_all(prod, topic, [Record(None, f"{i}".encode()) for i in range(600)],
                 partition=lambda i: i % 6)
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    seen: list[tuple[int, int]] = []
    members: list[Member] = []
    deadline = time.monotonic() + 50
    try:
        for _ in range(3):
            member = Member(run, topic, group, seen)
            member.start()
            members.append(member)
            while not member.assignment:
                check(time.monotonic() < deadline, "a member got no partitions")
                check(all(m.error is None for m in members), f"member failed: {members}")
                time.sleep(0.05)
        while not all(m.assignment for m in members):
            check(time.monotonic() < deadline, "the three members never all had partitions")
            time.sleep(0.05)
        members[0].stop.set()
        members[0].join(kit.TIMEOUT_S)
        rest = members[1:]
        client = admin(run)
        try:
            def committed() -> dict[int, int]:
                offsets = client.list_group_offsets({group: None})[group]
                return {tp.partition: meta.offset for tp, meta in offsets.items()}

            while committed() != {p: 100 for p in range(6)} or \
                    set().union(*(m.assignment for m in rest)) != set(range(6)):
                for m in members:
                    check(m.error is None, f"a member failed: {m.error!r}")
                check(time.monotonic() < deadline,
                      f"committed offsets {committed()}, assignments "
                      f"{[sorted(m.assignment) for m in rest]}")
                time.sleep(0.1)
        finally:
            client.close()
        check_equal("records consumed", set(seen), {(i % 6, i // 6) for i in range(600)})
        first, second = (m.assignment for m in rest)
        check(not first & second, f"partitions owned by both members: {first & second}")
    finally:
        for m in members:
            m.stop.set()
        for m in members:
            m.join(kit.TIMEOUT_S)


def resume_committed(run: Run) -> None:
    topic, group = run.topic("resume-committed"), run.group("resume-committed")
    create_topic(run, topic)
    prod = producer(run)
    try:
        send_all(prod, topic, [Record(None, f"{i}".encode()) for i in range(10)])
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    tp = TopicPartition(topic, 0)

    def poll_until(cons: KafkaConsumer, count: int) -> list[Any]:
        records: list[Any] = []
        deadline = time.monotonic() + kit.TIMEOUT_S
        while len(records) < count:
            check(time.monotonic() < deadline, f"read {len(records)} of {count} records")
            for batch in cons.poll(timeout_ms=500, max_records=count - len(records)).values():
                records.extend(batch)
        return records

    first = consumer(run, group_id=group, enable_auto_commit=False)
    try:
        first.subscribe([topic])
        prime_metadata(first, topic)
        got = poll_until(first, 4)
        check_equal("first consumer's offsets", [r.offset for r in got], [0, 1, 2, 3])
        first.commit({tp: OffsetAndMetadata(4, "", -1)})
    finally:
        first.close()
    second = consumer(run, group_id=group, enable_auto_commit=False)
    try:
        second.subscribe([topic])
        prime_metadata(second, topic)
        got = poll_until(second, 6)
        check_equal("second consumer's offsets", [r.offset for r in got], list(range(4, 10)))
        check_equal("values", [r.value for r in got], [f"{i}".encode() for i in range(4, 10)])
    finally:
        second.close()


def idempotent_producer(run: Run) -> None:
    topic = run.topic("idempotent-producer")
    create_topic(run, topic, 3)
    prod = producer(run, enable_idempotence=True)
    try:
        send_all(prod, topic, [Record(None, f"{i}".encode()) for i in range(1000)],
                 partition=lambda i: i % 3)
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    for p in range(3):
        values = [int(r.value) for r in read_partition(run, topic, p)]
        check_equal(f"partition {p} values", values, list(range(p, 1000, 3)))


def transactions(run: Run) -> None:
    topic = run.topic("transactions")
    create_topic(run, topic)
    prod = producer(run, transactional_id=f"compat-kafka-python-tx-{run.run_id}",
                    max_block_ms=TIMEOUT_MS)
    try:
        prod.init_transactions()
        prod.begin_transaction()
        send_all(prod, topic, [Record(None, f"committed {i}".encode()) for i in range(10)])
        prod.commit_transaction()
        prod.begin_transaction()
        send_all(prod, topic, [Record(None, f"aborted {i}".encode()) for i in range(10)])
        prod.abort_transaction()
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    committed = [f"committed {i}".encode() for i in range(10)]
    aborted = [f"aborted {i}".encode() for i in range(10)]
    got = [r.value for r in read_partition(run, topic, isolation_level="read_committed")]
    check_equal("read_committed values", got, committed)
    got = [r.value for r in read_partition(run, topic, isolation_level="read_uncommitted")]
    check_equal("read_uncommitted values", got, committed + aborted)


def delete_records(run: Run) -> None:
    topic = run.topic("delete-records")
    create_topic(run, topic)
    prod = producer(run)
    try:
        send_all(prod, topic, [Record(None, f"{i}".encode()) for i in range(10)])
    finally:
        prod.close(timeout=kit.TIMEOUT_S)
    tp = TopicPartition(topic, 0)
    client = admin(run)
    try:
        client.delete_records({tp: 5}, timeout_ms=TIMEOUT_MS)
    finally:
        client.close()
    cons = consumer(run)
    try:
        check_equal("earliest offset", cons.beginning_offsets([tp], TIMEOUT_MS)[tp], 5)
    finally:
        cons.close()
    got = read_partition(run, topic)
    check_equal("offsets read", [r.offset for r in got], [5, 6, 7, 8, 9])


DRIVER = kit.Driver("kafka-python", {
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
