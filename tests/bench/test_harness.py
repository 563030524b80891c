"""Smoke test of the benchmark harness: a quick run against Odradek through real clients.

``bench/run.py --quick`` drives Odradek with librdkafka's rdkafka_performance (built on
demand from Debian's librdkafka source; where it cannot be built, Kafka's Java perf tools
or confluent-kafka, and the report says so) and confluent-kafka over real sockets, measures
the machine limits, and writes results.json, performance.md and PNGs. The test checks that
the figures were measured (records counted, broker CPU and RSS read) and that the report
shows them, then re-renders from results.json alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from suite import rdkafka_perf, report, stats  # noqa: E402

STEPS = ["size/1000/produce", "size/1000/consume", "client/100/produce",
         "client/100/consume", "latency/500/fixed rate"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--brokers", "odradek",
         "--repeat", "1", "--workloads", "size/1000,client/100,latency/500,limits",
         "--out", str(out)],
        capture_output=True, text=True, timeout=110, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ETA" in result.stdout  # progress lines
    return out


@pytest.mark.timeout(120)
def test_quick_run_measures_every_step(quick_run: Path) -> None:
    doc = json.loads((quick_run / "performance" / "results.json").read_text())
    assert doc["brokers"]["odradek"]["status"] == "ok"
    by_step = {row["step"]: row for row in doc["results"]}
    assert sorted(by_step) == sorted(STEPS)
    for step in STEPS:
        row = by_step[step]
        assert row["ok"], (step, row["error"])
        figures = row["figures"]
        assert figures["rss_mb"] > 10  # read from /proc of the broker process
        assert figures["broker_cpu_s"] >= 0
        assert figures["driver"] in ("rdkafka_performance", "kafka-perf (Java)",
                                     "confluent-kafka")
    if rdkafka_perf.built():  # the run built it, or found it built
        assert by_step["size/1000/produce"]["figures"]["driver"] == "rdkafka_performance"
        assert by_step["size/1000/consume"]["figures"]["driver"] == "rdkafka_performance"
        assert doc["meta"]["rdkafka_performance"]["library"] == rdkafka_perf.library_version()
    assert by_step["size/1000/produce"]["figures"]["records"] == doc["steps"][
        "size/1000/produce"]["records"]
    assert by_step["client/100/consume"]["figures"]["records"] == 20_000  # counted, not HW
    assert by_step["client/100/consume"]["figures"]["bytes"] == 20_000 * 100
    latency = by_step["latency/500/fixed rate"]["figures"]
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["p999_ms"]
    assert set(doc["limits"]) == {"sendfile", "send", "write", "write+fsync", "mmap copy",
                                  "mmap copy+msync", "crc32c"}
    assert all(v[0] > 0 for v in doc["limits"].values())


@pytest.mark.timeout(120)
def test_report_and_plots_render_from_results_alone(quick_run: Path) -> None:
    text = (quick_run / "performance.md").read_text()
    for heading in ("## Machine", "## Machine limits", "## Goals", "## Record size",
                    "## Client: confluent-kafka", "## End-to-end latency", "## Plots"):
        assert heading in text
    assert "| 1 KB produce | records/s |" in text
    assert (quick_run / "performance" / "throughput.png").stat().st_size > 1000
    assert (quick_run / "performance" / "latency.png").stat().st_size > 1000
    (quick_run / "performance.md").unlink()
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--render-only", "--out",
         str(quick_run)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert (quick_run / "performance.md").read_text() == text


def test_unavailable_broker_and_failed_steps_are_reported(tmp_path: Path) -> None:
    doc = {
        "meta": {"date": "d", "command": "c", "quick": False, "repeat": 2,
                 "machine": {"cpu": "x"}, "versions": {}},
        "brokers": {"odradek": {"status": "ok", "describe": "ours"},
                    "kafka": {"status": "unavailable", "reason": "no java on PATH"}},
        "limits": {"mmap copy": [1000.0, 1200.0]},
        "steps": {"size/10000/produce": {"phase": "produce", "records": 5, "size": 10000}},
        "results": [
            {"broker": "odradek", "step": "size/10000/produce", "repeat": r, "ok": True,
             "error": "", "figures": {"records_per_s": v, "mb_per_s": v / 100,
                                      "driver": "confluent-kafka"}}
            for r, v in enumerate((40000.0, 60000.0))
        ] + [{"broker": "kafka", "step": "size/10000/produce", "repeat": 0, "ok": False,
              "error": "broker unavailable: no java on PATH", "figures": {}}],
    }
    text = report.render(doc, tmp_path).read_text()
    assert "**could not start**: no java on PATH" in text
    assert "50,000 [40,000–60,000]" in text  # median [min–max]
    assert "failed [1]" in text and "1. Apache Kafka, `size/10000/produce`" in text
    # 10-KB produce at 500 MB/s against an mmap copy of 1100 MB/s: 45%, not met.
    assert "| 10-KB produce ≥ 50% of mmap copy bandwidth | 45.5 % (500 of 1,100 MB/s) |" \
        " **not met** |" in text


def test_cells_show_median_min_max() -> None:
    assert stats.cell([3.0, 1.0, 2.0]) == "2.00 [1.00–3.00]"
    assert stats.cell([1234567.0]) == "1.23 M"
    assert stats.cell([]) == "–"
