"""The rdkafka_performance driver: its output parsed, and real runs against Odradek.

The fixtures in ``fixtures/`` are the tool's real output, captured once from
rdkafka_performance (librdkafka 2.0.2) against Odradek: a producer run (300,000 records of
100 B, lz4), the consumer run that read them back from 3 partitions, and a producer whose
broker was gone (every record failed after ``message.timeout.ms``). The real runs build the
tool first (``ensure_built``: Debian's librdkafka source package and librdkafka-dev, a few
seconds the first time); where it cannot be built they fail under CI and skip elsewhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from suite import brokers, rdkafka_perf, workloads  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / f"rdkafka_performance_{name}.txt").read_text()


def test_producer_summary_is_parsed_from_real_output() -> None:
    out = rdkafka_perf.parse_produce(fixture("produce"))
    assert out == {"records": 300_000, "produced": 300_000, "bytes": 30_000_000, "failed": 0,
                   "in_queue": 0, "seconds": 0.155, "records_per_s": 1_933_126.0,
                   "mb_per_s": 193.31, "backpressure": 0}


def test_consumer_summary_is_the_last_line_not_the_first() -> None:
    text = fixture("consume")
    assert "% 0 messages (0 bytes) consumed in 0ms" in text  # printed before the first record
    out = rdkafka_perf.parse_consume(text)
    assert out == {"records": 300_000, "bytes": 30_000_000, "seconds": 0.075,
                   "records_per_s": 3_986_075.0, "mb_per_s": 398.61}


def test_failed_deliveries_fail_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    text = fixture("produce_failed")
    out = rdkafka_perf.parse_produce(text)
    assert (out["records"], out["failed"], out["produced"]) == (0, 1000, 1000)

    def tool(args: list[str], **_: Any) -> rdkafka_perf.ToolRun:
        return rdkafka_perf.ToolRun(text, 1, 2.0, 0.1, args)

    monkeypatch.setattr(rdkafka_perf, "run_tool", tool)
    with pytest.raises(rdkafka_perf.ToolFailed, match="delivered 0 of 1000 records"):
        rdkafka_perf.produce("127.0.0.1:1", "t", 1000, 100)


def test_output_without_summary_is_an_error() -> None:
    text = "% Sending 10 messages of size 100 bytes\n% ERROR CALLBACK: broker down\n"
    with pytest.raises(rdkafka_perf.ToolFailed, match="no producer summary"):
        rdkafka_perf.parse_produce(text)
    with pytest.raises(rdkafka_perf.ToolFailed, match="no consumer summary"):
        rdkafka_perf.parse_consume(text)


def test_payload_pattern_has_the_record_size() -> None:
    assert len(rdkafka_perf.pattern(100)) == 100
    assert len(rdkafka_perf.pattern(10_000)) == 10_000
    assert set(rdkafka_perf.pattern(999)) <= set("0123456789abcdef")


# -- real runs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def odradek(tmp_path_factory: pytest.TempPathFactory) -> Iterator[workloads.Context]:
    try:
        rdkafka_perf.ensure_built()
    except rdkafka_perf.Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"rdkafka_performance cannot be built: {exc}")
        pytest.skip(f"rdkafka_performance cannot be built: {exc}")
    broker = brokers.make_broker("odradek", tmp_path_factory.mktemp("rdperf"))
    broker.start()
    try:
        yield workloads.Context(broker, workloads.QUICK, "t")
    finally:
        broker.remove()


@pytest.mark.timeout(120)
def test_produce_then_consume_counts_every_record(odradek: workloads.Context) -> None:
    ctx = odradek
    workloads.create_topic(ctx, "rdperf-lz4", 3)
    out = rdkafka_perf.produce(ctx.broker.bootstrap, "rdperf-lz4", 20_000, 100, acks="-1",
                               codec="lz4")
    assert out["records"] == 20_000 and out["failed"] == 0
    assert out["bytes"] == 20_000 * 100
    assert out["records_per_s"] > 0 and out["driver_cpu_s"] > 0
    # Every record landed: the broker's end offsets add up to what was delivered.
    ends = workloads.wire.end_offsets(ctx.broker.host, ctx.broker.port, "rdperf-lz4", 3)
    assert ends is not None and sum(ends) == 20_000
    got = rdkafka_perf.consume(ctx.broker.bootstrap, "rdperf-lz4", 20_000, 3)
    assert got["records"] == 20_000 and got["bytes"] == 20_000 * 100


@pytest.mark.timeout(120)
def test_a_consumer_waiting_for_missing_records_is_stopped(odradek: workloads.Context) -> None:
    ctx = odradek
    workloads.create_topic(ctx, "rdperf-short", 1)
    rdkafka_perf.produce(ctx.broker.bootstrap, "rdperf-short", 1_000, 10)
    # The tool would wait for ever for records that do not exist; the count stops moving.
    with pytest.raises(rdkafka_perf.ToolFailed, match="stalled at 1000 records"):
        rdkafka_perf.run_tool(["-C", "-b", ctx.broker.bootstrap, "-t", "rdperf-short",
                               "-p", "0", "-o", "beginning", "-c", "2000"], stall_s=3)
