"""End-to-end broker throughput with librdkafka (confluent-kafka).

Starts `python -m broker serve` on a free port with a fresh data dir, creates a topic with
one partition, produces N records of S bytes (acks=1, linger.ms=5, batch.size=1 MB), then
consumes them all from the beginning, and reports records/s, MB/s and the broker's CPU
seconds (user+system, from /proc/<pid>/stat) per GB moved in each phase.

    .venv/bin/python bench/broker_bench.py [--records 2000000] [--size 100] [--codec none]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"broker did not listen on {port}")


def produce(bootstrap: str, topic: str, records: int, size: int, codec: str) -> float:
    producer = Producer({
        "bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5, "batch.size": 1_000_000,
        "compression.type": codec, "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    })
    payload = os.urandom(size // 2).hex().encode()[:size].ljust(size, b"x")
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, payload)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records were not delivered")
    return time.perf_counter() - started


def consume(bootstrap: str, topic: str, records: int) -> float:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800,
    })
    from confluent_kafka import TopicPartition

    consumer.assign([TopicPartition(topic, 0, 0)])
    got = 0
    started = time.perf_counter()
    while got < records:
        batch = consumer.consume(num_messages=100_000, timeout=5)
        if not batch:
            raise RuntimeError(f"consumer stalled at {got} of {records} records")
        for message in batch:
            if message.error():
                raise RuntimeError(str(message.error()))
        got += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--codec", default="none")
    args = parser.parse_args()

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        broker = subprocess.Popen(
            [sys.executable, "-m", "broker", "serve", "--log-level", "WARNING",
             "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
             "--override", f"log.dirs={data}"],
            cwd=ROOT,
        )
        try:
            wait_for_port(port)
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for future in admin.create_topics([NewTopic("bench", 1, 1)]).values():
                future.result(30)
            volume = args.records * args.size
            cpu0 = cpu_seconds(broker.pid)
            produce_s = produce(bootstrap, "bench", args.records, args.size, args.codec)
            cpu1 = cpu_seconds(broker.pid)
            consume_s = consume(bootstrap, "bench", args.records)
            cpu2 = cpu_seconds(broker.pid)
        finally:
            broker.terminate()
            broker.wait(60)
    gb = volume / 1e9
    print(f"records={args.records} size={args.size}B codec={args.codec} client=confluent-kafka "
          f"(librdkafka)")
    for phase, seconds, cpu in (("produce", produce_s, cpu1 - cpu0),
                                ("consume", consume_s, cpu2 - cpu1)):
        print(f"{phase:8s} {args.records / seconds:12,.0f} records/s "
              f"{volume / seconds / 1e6:8.1f} MB/s  broker CPU {cpu:6.2f} s "
              f"= {cpu / gb:6.1f} CPU s/GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
