"""The confluent-kafka (librdkafka) load driver, run as a child process of ``bench/run.py``.

    python bench/suite/rdkafka_driver.py '{"mode": "produce", ...}'

prints one JSON object on its last line. Modes:

- ``produce``: ``records`` records of ``size`` bytes, as fast as ``produce()`` takes them
  (retrying on a full queue), then ``flush()``; librdkafka's defaults (``linger.ms=5``,
  ``batch.size`` 1,000,000) except ``acks`` and ``compression.type``. Failed deliveries are
  reported (``delivery.report.only.error``) and fail the run.
- ``consume``: assigns every partition at offset 0 (no group, no join) and counts the
  records it receives until ``records``. ``consume(num_messages=N)`` waits for N records or
  the timeout, so N is capped by what is still missing; ``queued.min.messages`` is raised
  so that the local queue does not pause fetching. The count is of records received, never
  a high watermark.
- ``group``: three member processes in one group split ``records`` between them; a shared
  counter stops them all. Returns the join time (until every member has partitions) and the
  rate from the first record to the last.
- ``latency``: a consumer process reads the (fresh) partition while records are sent at
  ``rate`` per second: warm-up records until the consumer receives one less than 100 ms
  after it was sent (at least half a second; at most 30 s, after which a broker that
  cannot keep up is measured with its backlog, ``caught_up`` false), then
  ``rate * seconds`` measured records, each carrying its send time in ns; the consumer
  takes ``time.time_ns()`` as ``poll()`` returns it. ``linger.ms=0``: at
  low rates every record is its own Produce request. Returns p50/p99/p99.9 in ms.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import struct
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

STAMP = struct.Struct(">qB")  # send time (ns), 1 = measured / 0 = warm-up
CAUGHT_UP_NS = 100_000_000  # warm-up ends once a record arrives within 100 ms
WARMUP_LIMIT_S = 30.0


def payload(size: int) -> bytes:
    """Random-looking bytes that compress like text (hex), as ProducerPerformance's letters."""
    return os.urandom(size // 2 + 1).hex().encode()[:size]


def produce(conf: dict[str, Any]) -> dict[str, Any]:
    errors: list[str] = []
    producer = Producer({
        "bootstrap.servers": conf["bootstrap"], "acks": str(conf.get("acks", "1")),
        "compression.type": conf.get("codec", "none"), "delivery.report.only.error": True,
        "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
        "on_delivery": lambda err, _msg: errors.append(str(err)) if err else None,
    })
    value, topic, records = payload(conf["size"]), conf["topic"], conf["records"]
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.005)
        if i % 20_000 == 0:
            producer.poll(0)
    left = producer.flush(600)
    seconds = time.perf_counter() - started
    if left or errors:
        raise RuntimeError(f"{left} records undelivered, {len(errors)} failed: {errors[:3]}")
    return {"records": records, "seconds": seconds}


def _consumer(conf: dict[str, Any], group: str | None = None) -> Consumer:
    settings = {
        "bootstrap.servers": conf["bootstrap"], "group.id": group or "bench-assign",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "queued.min.messages": 1_000_000, "queued.max.messages.kbytes": 1_048_576,
    }
    return Consumer(settings)


def consume(conf: dict[str, Any]) -> dict[str, Any]:
    consumer = _consumer(conf)
    consumer.assign([TopicPartition(conf["topic"], p, 0) for p in range(conf["partitions"])])
    records, got, nbytes = conf["records"], 0, 0
    started = time.perf_counter()
    last = started
    while got < records:
        batch = consumer.consume(num_messages=min(10_000, records - got), timeout=1.0)
        now = time.perf_counter()
        if batch:
            last = now
        elif now - last > 60:
            raise RuntimeError(f"no record for 60 s at {got} of {records}")
        for message in batch:
            if message.error():
                raise KafkaException(message.error())
            nbytes += len(message.value() or b"")
        got += len(batch)
    seconds = time.perf_counter() - started
    consumer.close()
    return {"records": got, "bytes": nbytes, "seconds": seconds}


def _member(conf: dict[str, Any], total: Any, assigned: Any, first: Any, done: Any) -> None:
    consumer = _consumer(conf, conf["group"])
    got_partitions = False

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        nonlocal got_partitions
        if partitions and not got_partitions:
            got_partitions = True
            with assigned.get_lock():
                assigned.value += 1

    consumer.subscribe([conf["topic"]], on_assign=on_assign)
    records = conf["records"]
    while total.value < records:
        batch = consumer.consume(num_messages=1000, timeout=0.2)
        batch = [m for m in batch if m.error() is None]
        if batch:
            with total.get_lock():
                if first.value == 0:
                    first.value = time.time()
                total.value += len(batch)
                if total.value >= records and done.value == 0:
                    done.value = time.time()
    consumer.close()


def group(conf: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    total, assigned = ctx.Value("q", 0), ctx.Value("i", 0)
    first, done = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    started = time.time()
    members = [ctx.Process(target=_member, args=(conf, total, assigned, first, done))
               for _ in range(conf.get("members", 3))]
    for m in members:
        m.start()
    joined = 0.0
    deadline = started + conf.get("timeout", 600)
    while any(m.is_alive() for m in members):
        if not joined and assigned.value >= len(members):
            joined = time.time() - started
        if time.time() > deadline:
            for m in members:
                m.kill()
            raise RuntimeError(f"group consumed {total.value} of {conf['records']} in time")
        time.sleep(0.01)
    if any(m.exitcode for m in members):
        raise RuntimeError(f"a member failed: exit codes {[m.exitcode for m in members]}")
    return {"records": total.value, "seconds": done.value - first.value,
            "join_s": joined, "members_assigned": assigned.value}


def _latency_consumer(conf: dict[str, Any], flowing: Any, out: Any) -> None:
    consumer = _consumer(conf)
    consumer.assign([TopicPartition(conf["topic"], 0, 0)])  # a fresh topic: from its start
    samples: list[int] = []
    expected = conf["expected"]
    idle_since = time.monotonic()
    while len(samples) < expected and time.monotonic() - idle_since < 30:
        message = consumer.poll(0.1)
        now = time.time_ns()
        if message is None or message.error():
            continue
        idle_since = time.monotonic()
        sent, measured = STAMP.unpack_from(message.value() or bytes(STAMP.size))
        if measured:
            samples.append(now - sent)
        elif now - sent < CAUGHT_UP_NS:
            flowing.set()
    consumer.close()
    out.send(samples)


def _paced(producer: Producer, topic: str, rate: float, pad: bytes, measured: bool,
           count: int | None = None, until: Any = None, limit: float = 60.0) -> float:
    """Send at ``rate`` records/s, ``count`` of them or until ``until`` is set; the rate.

    Sends every record that is due, then sleeps 0.2 ms: no busy loop stealing a core from
    the broker and the consumer. Each record is stamped as it is handed to the client, so
    the pacing's jitter does not enter the latency.
    """
    started = time.perf_counter()
    sent = 0
    while (count is None or sent < count) and (elapsed := time.perf_counter() - started) < limit:
        if until is not None and sent >= rate / 2 and until.is_set():
            break
        due = int(elapsed * rate) + 1
        if count is not None:
            due = min(due, count)
        while sent < due:
            value = STAMP.pack(time.time_ns(), measured) + pad
            while True:
                try:
                    producer.produce(topic, value, partition=0)
                    break
                except BufferError:  # the broker is behind: the wait counts in the latency
                    producer.poll(0.001)
            sent += 1
        producer.poll(0)
        time.sleep(0.0002)
    return sent / (time.perf_counter() - started)


def latency(conf: dict[str, Any]) -> dict[str, Any]:
    """Warm up until the consumer receives records (at least 0.5 s), then measure."""
    rate, seconds, size = conf["rate"], conf["seconds"], max(conf["size"], STAMP.size)
    expected = int(rate * seconds)
    ctx = mp.get_context("spawn")
    flowing, (receiver, sender) = ctx.Event(), ctx.Pipe(duplex=False)
    reader = ctx.Process(target=_latency_consumer,
                         args=({**conf, "expected": expected}, flowing, sender))
    reader.start()
    producer = Producer({"bootstrap.servers": conf["bootstrap"], "linger.ms": 0,
                         "acks": str(conf.get("acks", "all"))})
    pad = b"x" * (size - STAMP.size)
    _paced(producer, conf["topic"], rate, pad, False, until=flowing, limit=WARMUP_LIMIT_S)
    caught_up = flowing.is_set()  # else the broker cannot keep up: measure the backlog
    achieved = _paced(producer, conf["topic"], rate, pad, True, count=expected,
                      limit=seconds * 10 + 60)
    producer.flush(60)
    samples: list[int] = receiver.recv() if receiver.poll(120) else []
    reader.join(30)
    if len(samples) < expected:
        raise RuntimeError(f"latency consumer got {len(samples)} of {expected} records")
    samples.sort()

    def pct(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))] / 1e6

    return {"records": len(samples), "rate": achieved, "caught_up": caught_up,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "p999_ms": pct(0.999), "max_ms": samples[-1] / 1e6}


def run(conf: dict[str, Any], timeout: float = 1800.0) -> dict[str, Any]:
    """Run one mode in a child process; the result gains its ``driver_cpu_s`` and wall time."""
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, __file__, json.dumps(conf)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except BaseException:  # interrupted: do not leave the driver running
                proc.kill()
                raise
            if pid:
                break
            if time.monotonic() - started > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"confluent-kafka {conf['mode']} timed out after {timeout} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    lines = text.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"confluent-kafka {conf['mode']} failed:\n{text[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    # Children of the driver (group members, the latency consumer) count in its rusage.
    result["driver_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["driver_wall_s"] = time.monotonic() - started
    return result


MODES = {"produce": produce, "consume": consume, "group": group, "latency": latency}


def main() -> int:
    conf = json.loads(sys.argv[1])
    result = MODES[conf["mode"]](conf)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
