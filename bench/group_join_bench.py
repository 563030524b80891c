"""How long three confluent-kafka members take to join a group and consume, on Odradek
and (with --kafka) on Apache Kafka 4.4 with the same group.initial.rebalance.delay.ms.

    .venv/bin/python bench/group_join_bench.py [--delay 3000] [--kafka]

Prints, for each broker, when each member got its assignment and its first record,
in milliseconds from the moment the three subscribed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "compat" / "apache-kafka"))


def prepare(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("join", 3, 1)])["join"].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in range(3):
        producer.produce("join", b"x", partition=partition)
    producer.flush(30)
    # Let the coordinator load (__consumer_offsets) before timing.
    warm = Consumer({"bootstrap.servers": bootstrap, "group.id": "warm-up"})
    warm.subscribe(["join"])
    deadline = time.monotonic() + 30
    while not warm.assignment() and time.monotonic() < deadline:
        warm.poll(0.1)
    warm.close()


def three_members(bootstrap: str) -> tuple[list[int], list[int]]:
    assigned: dict[int, float] = {}
    first: dict[int, float] = {}
    started = time.monotonic()
    members = []
    for i in range(3):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "join",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(["join"], on_assign=lambda c, ps, i=i: assigned.setdefault(
            i, time.monotonic() - started))
        members.append(consumer)
    while len(first) < 3 and time.monotonic() - started < 60:
        for i, consumer in enumerate(members):
            message = consumer.poll(0.005)
            if message is not None and message.error() is None:
                first.setdefault(i, time.monotonic() - started)
    for consumer in members:
        consumer.close()
    return (sorted(round(v * 1000) for v in assigned.values()),
            sorted(round(v * 1000) for v in first.values()))


def odradek(delay: int) -> tuple[list[int], list[int]]:
    from broker.config import BrokerConfig
    from broker.server import Broker

    async def main() -> tuple[list[int], list[int]]:
        with tempfile.TemporaryDirectory() as data:
            broker = Broker(BrokerConfig({
                "listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": data,
                "group.initial.rebalance.delay.ms": str(delay)}))
            async with trio.open_nursery() as nursery:
                ports = await nursery.start(broker.serve)
                bootstrap = f"127.0.0.1:{ports[0]}"
                await trio.to_thread.run_sync(prepare, bootstrap)
                result = await trio.to_thread.run_sync(three_members, bootstrap)
                nursery.cancel_scope.cancel()
        return result

    return trio.run(main)


def apache_kafka(delay: int) -> tuple[list[int], list[int]]:
    from apache_kafka import ReferenceKafka

    with ReferenceKafka(overrides={"group.initial.rebalance.delay.ms": str(delay)}) as kafka:
        prepare(kafka.bootstrap)
        return three_members(kafka.bootstrap)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=int, default=3000)
    parser.add_argument("--kafka", action="store_true", help="also run Apache Kafka 4.4")
    args = parser.parse_args()
    runs = [("odradek", odradek)] + ([("apache-kafka-4.4", apache_kafka)] if args.kafka else [])
    for name, run in runs:
        assigned, first = run(args.delay)
        print(f"{name:18s} group.initial.rebalance.delay.ms={args.delay} "
              f"assigned_ms={assigned} first_record_ms={first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
