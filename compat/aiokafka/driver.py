"""The aiokafka driver of the compatibility matrix (compat/SCENARIOS.md).

Every scenario is a coroutine on aiokafka's own API (`AIOKafkaAdminClient`,
`AIOKafkaProducer`, `AIOKafkaConsumer`) with its default settings, except where the scenario
asks otherwise: `max_request_size` raised for the 1,000,000-byte record, `compression_type`
for the codec scenarios, `enable_idempotence` (off by default in aiokafka),
`transactional_id` and `isolation_level`, and `auto_offset_reset="earliest"` for consumers
that must read from the beginning (aiokafka's default is `latest`). Each scenario runs in its
own event loop under `asyncio.timeout(driverkit.TIMEOUT_S * 2)`.

aiokafka's admin client returns raw responses: `expect_no_errors` checks their error codes.
`alter_configs` is the (non-incremental) AlterConfigs, the only one aiokafka has; the topic
has no other config set, so setting `retention.ms` alone changes nothing else.

What aiokafka cannot express: a record whose key and value are both null (`send()` asserts
"Need at least one: key or value"). `produce-consume` leaves that record out, checks the other
three at offsets 0..2, and passes with a note saying so.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
import driverkit as kit  # noqa: E402
from driverkit import Record, Run, check, check_equal  # noqa: E402

T = kit.TIMEOUT_S
TIMEOUT_MS = T * 1000


def scenario(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run the coroutine function in a fresh event loop, bounded by twice `TIMEOUT_S`."""
    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        async def bounded() -> Any:
            budget = asyncio.timeout(2 * T)
            try:
                async with budget:
                    return await fn(*args, **kwargs)
            except TimeoutError:
                if budget.expired():
                    raise TimeoutError(f"the scenario ran out of its {2 * T} s") from None
                raise
        return asyncio.run(bounded())
    return run


def expect_no_errors(what: str, response: Any) -> None:
    """Every `error_code` in the response (at any depth of its tuples) is 0."""
    codes: list[tuple[Any, int]] = []

    def walk(value: Any) -> None:
        if hasattr(value, "to_object"):
            value = value.to_object()
        if isinstance(value, dict):
            if value.get("error_code"):
                codes.append((value.get("error_message"), value["error_code"]))
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(response)
    check(not codes, f"{what}: error codes {codes}")


async def eventually(what: str, read: Callable[[], Awaitable[Any]], want: object) -> None:
    """`driverkit.eventually` for a coroutine: admin changes apply asynchronously in Kafka."""
    deadline = time.monotonic() + T
    while (got := await read()) != want:
        check(time.monotonic() < deadline, f"{what}: got {got!r}, want {want!r} after {T} s")
        await asyncio.sleep(0.1)


async def admin(run: Run) -> AIOKafkaAdminClient:
    client = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await client.start()
    return client


async def create_topic(run: Run, name: str, partitions: int = 1,
                       configs: dict[str, str] | None = None) -> None:
    client = await admin(run)
    try:
        response = await client.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=configs or {})], timeout_ms=TIMEOUT_MS)
        expect_no_errors("CreateTopics", response)
    finally:
        await client.close()


async def send_all(topic: str, records: list[Record], run: Run,
                   partition: int | Callable[[int], int] = 0, **config: Any) -> list[Any]:
    """Send the records with a new producer and wait for every acknowledgement."""
    prod = AIOKafkaProducer(bootstrap_servers=run.bootstrap, **config)
    await prod.start()
    try:
        futures = [await prod.send(topic, r.value, r.key,
                                   partition=partition(i) if callable(partition) else partition,
                                   timestamp_ms=r.timestamp, headers=list(r.headers) or None)
                   for i, r in enumerate(records)]
        return list(await asyncio.gather(*futures))
    finally:
        await prod.stop()


async def read_partition(run: Run, topic: str, partition: int = 0,
                         **config: Any) -> list[Any]:
    """Every record of the partition from its beginning to its end offset."""
    cons = AIOKafkaConsumer(bootstrap_servers=run.bootstrap, enable_auto_commit=False,
                            auto_offset_reset="earliest", **config)
    await cons.start()
    try:
        tp = TopicPartition(topic, partition)
        cons.assign([tp])
        await cons.seek_to_beginning(tp)
        end = (await cons.end_offsets([tp]))[tp]
        records: list[Any] = []
        deadline = time.monotonic() + T
        while await cons.position(tp) < end:
            check(time.monotonic() < deadline,
                  f"{topic}[{partition}]: read {len(records)} records, position "
                  f"{await cons.position(tp)} of end offset {end} after {T} s")
            for batch in (await cons.getmany(tp, timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await cons.stop()


def as_record(rec: Any) -> Record:
    return Record(rec.key, rec.value, tuple((k, v) for k, v in rec.headers or ()), rec.timestamp)


def numbered(count: int) -> list[Record]:
    return [Record(None, f"{i}".encode()) for i in range(count)]


# ---------------------------------------------------------------------------- scenarios


@scenario
async def metadata(run: Run) -> None:
    topic = run.topic("metadata")
    await create_topic(run, topic, 2)
    client = await admin(run)
    try:
        brokers = (await client.describe_cluster())["brokers"]
        check_equal("brokers", [(b["host"], b["port"]) for b in brokers], [(run.host, run.port)])
        check(topic in await client.list_topics(), f"{topic} is not in the topic list")

        async def partitions() -> int:
            (described,) = await client.describe_topics([topic])
            return len(described["partitions"])

        await eventually("partition count", partitions, 2)
    finally:
        await client.close()


@scenario
async def topics_admin(run: Run) -> None:
    topic = run.topic("topics-admin")
    await create_topic(run, topic, 3, {"retention.ms": "3600000"})
    client = await admin(run)
    try:
        (node,) = [b["node_id"] for b in (await client.describe_cluster())["brokers"]]

        async def leaders() -> list[int]:
            (described,) = await client.describe_topics([topic])
            return [p["leader"] for p in sorted(described["partitions"],
                                                key=lambda p: p["partition"])]

        async def retention() -> str:
            (response,) = await client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)])
            expect_no_errors("DescribeConfigs", response)
            entries = response.to_object()["resources"][0]["config_entries"]
            return next(e["config_value"] for e in entries if e["config_names"] == "retention.ms")

        await eventually("partition leaders", leaders, [node] * 3)
        await eventually("retention.ms", retention, "3600000")
        responses = await client.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})])
        expect_no_errors("AlterConfigs", responses)
        await eventually("retention.ms after the alter", retention, "7200000")

        response = await client.create_partitions({topic: NewPartitions(5)},
                                                  timeout_ms=TIMEOUT_MS)
        expect_no_errors("CreatePartitions", response)
        await eventually("partition leaders after growing", leaders, [node] * 5)

        expect_no_errors("DeleteTopics", await client.delete_topics([topic], TIMEOUT_MS))
        deadline = time.monotonic() + T
        while topic in await client.list_topics():
            check(time.monotonic() < deadline, f"{topic} still listed after its deletion")
            await asyncio.sleep(0.2)
    finally:
        await client.close()


@scenario
async def produce_consume(run: Run) -> str:
    topic = run.topic("produce-consume")
    await create_topic(run, topic)
    want = [r for r in kit.produce_consume_records() if r.key is not None or r.value is not None]
    acks = await send_all(topic, want, run, max_request_size=2 * kit.BIG_RECORD_BYTES)
    check_equal("acknowledged offsets", [m.offset for m in acks], [0, 1, 2])
    got = await read_partition(run, topic)
    check_equal("offsets read", [r.offset for r in got], [0, 1, 2])
    kit.check_records("produce-consume", [as_record(r) for r in got], want)
    return ("aiokafka cannot send a record whose key and value are both null (send() asserts "
            "'Need at least one: key or value'); the other three records were checked")


@scenario
async def produce_codec(run: Run, codec: str) -> None:
    topic = run.codec_topic(codec)
    await create_topic(run, topic)
    acks = await send_all(topic, kit.codec_records(codec), run,
                          compression_type=None if codec == "none" else codec)
    check_equal("acknowledged offsets", [m.offset for m in acks], list(range(kit.CODEC_RECORDS)))


@scenario
async def consume_codec(run: Run, codec: str, writer: str) -> None:
    got = await read_partition(run, run.codec_topic(codec, writer))
    check_equal("offsets", [r.offset for r in got], list(range(kit.CODEC_RECORDS)))
    kit.check_records(f"{codec} from {writer}", [as_record(r) for r in got],
                      kit.codec_records(codec))


@scenario
async def list_offsets_by_time(run: Run) -> None:
    topic = run.topic("list-offsets-by-time")
    await create_topic(run, topic, 1, {"retention.ms": "-1"})  # the records are from 2023
    await send_all(topic, [Record(b"k", f"v{i}".encode(), (), t)
                           for i, t in enumerate(kit.LIST_OFFSETS_TIMES)], run)
    cons = AIOKafkaConsumer(bootstrap_servers=run.bootstrap)
    await cons.start()
    try:
        tp = TopicPartition(topic, 0)
        check_equal("earliest", (await cons.beginning_offsets([tp]))[tp], 0)
        check_equal("latest", (await cons.end_offsets([tp]))[tp], 3)
        for when, want in ((1_700_000_000_500, 1), (1_700_000_002_000, 2),
                           (1_700_000_003_000, None)):
            found = (await cons.offsets_for_times({tp: when}))[tp]
            check_equal(f"offset for time {when}", None if found is None else found.offset, want)
    finally:
        await cons.stop()


class Member:
    """A group member polling in its own task, committing after each fetch that got records."""

    def __init__(self, run: Run, topic: str, group: str, seen: list[tuple[int, int]]) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=run.bootstrap, group_id=group,
                                         enable_auto_commit=False, auto_offset_reset="earliest")
        self.seen = seen
        self.stopping = asyncio.Event()
        self.assignment: set[int] = set()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self.loop())

    async def loop(self) -> None:
        try:
            while not self.stopping.is_set():
                fetched = await self.consumer.getmany(timeout_ms=200)
                for batch in fetched.values():
                    self.seen.extend((r.partition, r.offset) for r in batch)
                if fetched:
                    await self.consumer.commit()
                self.assignment = {tp.partition for tp in self.consumer.assignment()}
        finally:
            await self.consumer.stop()

    def check_alive(self) -> None:
        if self.task is not None and self.task.done() and not self.stopping.is_set():
            self.task.result()  # raises the member's error
            raise AssertionError("a member stopped by itself")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await self.task


@scenario
async def consumer_group(run: Run) -> None:
    topic, group = run.topic("consumer-group"), run.group("group")
    await create_topic(run, topic, 6)
    await send_all(topic, numbered(600), run, partition=lambda i: i % 6)
    seen: list[tuple[int, int]] = []
    members: list[Member] = []
    deadline = time.monotonic() + 50
    client = await admin(run)
    try:
        for _ in range(3):
            member = Member(run, topic, group, seen)
            await member.start()
            members.append(member)
            while not member.assignment:
                check(time.monotonic() < deadline, "a member got no partitions")
                for m in members:
                    m.check_alive()
                await asyncio.sleep(0.05)
        while not all(m.assignment for m in members):
            check(time.monotonic() < deadline, "the three members never all had partitions")
            await asyncio.sleep(0.05)
        await members[0].stop()
        rest = members[1:]

        async def committed() -> dict[int, int]:
            offsets = await client.list_consumer_group_offsets(group)
            return {tp.partition: meta.offset for tp, meta in offsets.items()}

        while await committed() != {p: 100 for p in range(6)} or \
                set().union(*(m.assignment for m in rest)) != set(range(6)):
            for m in rest:
                m.check_alive()
            check(time.monotonic() < deadline,
                  f"committed offsets {await committed()}, assignments "
                  f"{[sorted(m.assignment) for m in rest]}")
            await asyncio.sleep(0.1)
        check_equal("records consumed", set(seen), {(i % 6, i // 6) for i in range(600)})
        first, second = (m.assignment for m in rest)
        check(not first & second, f"partitions owned by both members: {first & second}")
    finally:
        for m in members:
            if not m.stopping.is_set():
                await m.stop()
        await client.close()


@scenario
async def resume_committed(run: Run) -> None:
    topic, group = run.topic("resume-committed"), run.group("resume-committed")
    await create_topic(run, topic)
    await send_all(topic, numbered(10), run)
    tp = TopicPartition(topic, 0)

    async def poll_until(cons: AIOKafkaConsumer, count: int) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + T
        while len(got) < count:
            check(time.monotonic() < deadline, f"read {len(got)} of {count} records")
            fetched = await cons.getmany(timeout_ms=500, max_records=count - len(got))
            for batch in fetched.values():
                got.extend(batch)
        return got

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=run.bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest")

    first = member()
    await first.start()
    try:
        got = await poll_until(first, 4)
        check_equal("first consumer's offsets", [r.offset for r in got], [0, 1, 2, 3])
        await first.commit({tp: OffsetAndMetadata(4, "")})
    finally:
        await first.stop()
    second = member()
    await second.start()
    try:
        got = await poll_until(second, 6)
        check_equal("second consumer's offsets", [r.offset for r in got], list(range(4, 10)))
        check_equal("values", [r.value for r in got], [f"{i}".encode() for i in range(4, 10)])
    finally:
        await second.stop()


@scenario
async def idempotent_producer(run: Run) -> None:
    topic = run.topic("idempotent-producer")
    await create_topic(run, topic, 3)
    await send_all(topic, numbered(1000), run, partition=lambda i: i % 3,
                   enable_idempotence=True)
    for p in range(3):
        values = [int(r.value) for r in await read_partition(run, topic, p)]
        check_equal(f"partition {p} values", values, list(range(p, 1000, 3)))


@scenario
async def transactions(run: Run) -> None:
    topic = run.topic("transactions")
    await create_topic(run, topic)
    prod = AIOKafkaProducer(bootstrap_servers=run.bootstrap,
                            transactional_id=f"compat-aiokafka-tx-{run.run_id}")
    await prod.start()
    try:
        for label, commit in (("committed", True), ("aborted", False)):
            await prod.begin_transaction()
            futures = [await prod.send(topic, f"{label} {i}".encode(), partition=0)
                       for i in range(10)]
            await asyncio.gather(*futures)
            if commit:
                await prod.commit_transaction()
            else:
                await prod.abort_transaction()
    finally:
        await prod.stop()
    committed = [f"committed {i}".encode() for i in range(10)]
    aborted = [f"aborted {i}".encode() for i in range(10)]
    got = [r.value for r in await read_partition(run, topic, isolation_level="read_committed")]
    check_equal("read_committed values", got, committed)
    got = [r.value for r in await read_partition(run, topic, isolation_level="read_uncommitted")]
    check_equal("read_uncommitted values", got, committed + aborted)


@scenario
async def delete_records(run: Run) -> None:
    topic = run.topic("delete-records")
    await create_topic(run, topic)
    await send_all(topic, numbered(10), run)
    tp = TopicPartition(topic, 0)
    client = await admin(run)
    try:
        low = await client.delete_records({tp: RecordsToDelete(5)}, timeout_ms=TIMEOUT_MS)
        check_equal("low watermark after DeleteRecords", low[tp], 5)
    finally:
        await client.close()
    cons = AIOKafkaConsumer(bootstrap_servers=run.bootstrap)
    await cons.start()
    try:
        check_equal("earliest offset", (await cons.beginning_offsets([tp]))[tp], 5)
    finally:
        await cons.stop()
    got = await read_partition(run, topic)
    check_equal("offsets read", [r.offset for r in got], [5, 6, 7, 8, 9])


DRIVER = kit.Driver("aiokafka", {
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
