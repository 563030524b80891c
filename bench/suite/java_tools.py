"""Kafka's own load tools, run from the jars of ``compat/apache-kafka/lib`` (native driver).

- ``producer_perf``: ``org.apache.kafka.tools.ProducerPerformance`` (kafka-producer-perf-test),
  unthrottled, random payloads of ``--record-size`` bytes; returns the tool's final line
  (records/s, MB/s as MiB/s, latencies).
- ``consumer_perf``: ``org.apache.kafka.tools.ConsumerPerformance``
  (kafka-consumer-perf-test); it counts the records it consumed and stops at
  ``--num-records``; its ``fetch.nMsg.sec`` excludes the group join.
- ``end_to_end_latency``: ``org.apache.kafka.tools.EndToEndLatency``, one record in flight
  at a time (closed loop), percentiles in whole milliseconds.

Each tool is a JVM with ``-Xmx512M``, the heap the kafka-*-perf-test.sh scripts give them.
Every run returns the child's own CPU seconds too (``os.wait4``), to tell whether the tool
was the bottleneck.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass

from . import brokers

TOOLS_HEAP = "-Xmx512M"
LIB = brokers.ROOT / "compat" / "apache-kafka" / "lib"
MiB = 1024 * 1024


class ToolFailed(RuntimeError):
    """A tool exited non-zero or printed nothing we could read."""


@dataclass
class ToolRun:
    output: str
    wall_s: float
    cpu_s: float


def available() -> str | None:
    """None when the tools can run, else why not."""
    if not (LIB / f"kafka-tools-{brokers.apache_kafka.KAFKA_VERSION}.jar").exists():
        return "Kafka's jars are missing (bash compat/apache-kafka/fetch.sh)"
    try:
        brokers.apache_kafka.java()
    except brokers.apache_kafka.KafkaError as exc:
        return str(exc)
    return None


def _run(main: str, args: list[str], timeout: float) -> ToolRun:
    cmd = [brokers.apache_kafka.java(), TOOLS_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
           "-cp", f"{LIB}/*", main, *args]
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except BaseException:  # interrupted: do not leave the tool running
                proc.kill()
                raise
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                out.seek(0)
                tail = out.read().decode(errors="replace")[-2000:]
                name = main.rsplit(".", 1)[1]
                raise ToolFailed(f"{name} timed out after {timeout:.0f} s\n{tail}")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise ToolFailed(f"{main.rsplit('.', 1)[1]} exited {proc.returncode}:\n{text[-2000:]}")
    return ToolRun(text, wall, usage.ru_utime + usage.ru_stime)


_PRODUCED = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def producer_perf(bootstrap: str, topic: str, records: int, size: int,
                  props: dict[str, str], timeout: float = 1800.0) -> dict[str, float]:
    """Produce ``records`` records of ``size`` bytes as fast as the producer can."""
    run = _run("org.apache.kafka.tools.ProducerPerformance", [
        "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
        "--record-size", str(size), "--throughput", "-1",
        "--command-property", *(f"{k}={v}" for k, v in props.items()),
    ], timeout)
    matches = _PRODUCED.findall(run.output)
    if not matches:
        raise ToolFailed(f"ProducerPerformance printed no summary:\n{run.output[-2000:]}")
    sent, rate, _mib, _avg, _max, p50, _p95, p99, p999 = matches[-1]
    if int(sent) != records:
        raise ToolFailed(f"ProducerPerformance sent {sent} of {records} records")
    return {"records": int(sent), "records_per_s": float(rate),
            "mb_per_s": float(rate) * size / 1e6, "ack_p50_ms": float(p50),
            "ack_p99_ms": float(p99), "ack_p999_ms": float(p999),
            "driver_cpu_s": run.cpu_s, "driver_wall_s": run.wall_s}


def consumer_perf(bootstrap: str, topic: str, records: int, group: str,
                  timeout: float = 1800.0, idle_ms: int = 30000) -> dict[str, float]:
    """Consume ``records`` records from the earliest offset with a fresh consumer group."""
    run = _run("org.apache.kafka.tools.ConsumerPerformance", [
        "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
        "--group", group, "--timeout", str(idle_ms), "--hide-header",
    ], timeout)
    rows = [line for line in run.output.splitlines() if line.count(",") == 9]
    if not rows:
        raise ToolFailed(f"ConsumerPerformance printed no summary:\n{run.output[-2000:]}")
    cols = [c.strip() for c in rows[-1].split(",")]
    consumed_mib, consumed, rebalance_ms, fetch_ms = (float(cols[2]), int(cols[4]),
                                                      float(cols[6]), float(cols[7]))
    if consumed < records:
        raise ToolFailed(f"ConsumerPerformance consumed {consumed} of {records} records")
    seconds = max(fetch_ms, 1.0) / 1000
    return {"records": consumed, "records_per_s": consumed / seconds,
            "mb_per_s": consumed_mib * MiB / seconds / 1e6, "join_ms": rebalance_ms,
            "driver_cpu_s": run.cpu_s, "driver_wall_s": run.wall_s}


_LATENCY = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")
_AVERAGE = re.compile(r"Avg latency: ([\d.]+) ms")


def end_to_end_latency(bootstrap: str, topic: str, records: int, size: int,
                       acks: str = "all", timeout: float = 600.0) -> dict[str, float]:
    """Closed-loop latency: send one record, wait until consumed, repeat ``records`` times."""
    run = _run("org.apache.kafka.tools.EndToEndLatency",
               [bootstrap, topic, str(records), acks, str(size)], timeout)
    found, avg = _LATENCY.search(run.output), _AVERAGE.search(run.output)
    if not found or not avg:
        raise ToolFailed(f"EndToEndLatency printed no percentiles:\n{run.output[-2000:]}")
    p50, p99, p999 = (float(x) for x in found.groups())
    return {"records": records, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999,
            "avg_ms": float(avg.group(1)), "rate": 1000 / max(float(avg.group(1)), 1e-3),
            "driver_cpu_s": run.cpu_s, "driver_wall_s": run.wall_s}


