"""``docs/performance.md`` from ``results.json``: machine, limits, goals, one table per workload.

Every cell is the median over the repetitions with ``[min–max]`` next to it. A step that
failed on a broker shows "failed" with a numbered note giving the error, and a broker that
could not be started is listed with the reason: nothing is dropped silently. The plots are
drawn by ``plots.py`` next to the report.
"""

from __future__ import annotations

import platform
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import brokers, plots, stats
from .rdkafka_perf import PRODUCER_CONF
from .workloads import JAVA, NATIVE, RDKAFKA, Step

LABELS = {"odradek": "Odradek", "tansu": "Tansu", "kafka": "Apache Kafka"}

# (figure key, row label) for throughput steps
THROUGHPUT_FIGURES = [
    ("records_per_s", "records/s"),
    ("mb_per_s", "MB/s"),
    ("cpu_us_per_record", "broker CPU µs/record"),
    ("cpu_s_per_gb", "broker CPU s/GB"),
    ("rss_mb", "broker RSS MB"),
    ("driver_busy", "driver CPU s / wall s"),
]
LATENCY_FIGURES = [("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p999_ms", "p99.9 ms"),
                   ("rate", "achieved records/s"), ("cpu_us_per_record", "broker CPU µs/record"),
                   ("rss_mb", "broker RSS MB")]

# (section title, explanation, [(row label, step id)], figures)
SECTIONS: list[tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("Record size", "6 partitions, no compression, acks=1, driven by librdkafka's "
     "`rdkafka_performance` (C): produce with "
     + ", ".join(f"`{k}={v}`" for k, v in PRODUCER_CONF.items())
     + "; consume by partition (no group), counting the records received, timed from the "
     "first record to the last.",
     [(f"{s} produce", f"size/{n}/produce") for s, n in
      (("100 B", 100), ("1 KB", 1000), ("10 KB", 10000))]
     + [(f"{s} consume", f"size/{n}/consume") for s, n in
        (("100 B", 100), ("1 KB", 1000), ("10 KB", 10000))], THROUGHPUT_FIGURES),
    ("Client: Kafka's Java perf tools", "The same record sizes (fewer records) driven by "
     "Kafka's `ProducerPerformance` (its defaults but `batch.size=524288`) and "
     "`ConsumerPerformance` (a fresh group; the consume rate excludes the join).",
     [(f"{s} {p}", f"java/{n}/{p}") for p in ("produce", "consume") for s, n in
      (("100 B", 100), ("1 KB", 1000), ("10 KB", 10000))], THROUGHPUT_FIGURES),
    ("Client: confluent-kafka", "The same record sizes driven by confluent-kafka (librdkafka "
     "behind a Python loop): produce with librdkafka's defaults, consume by assignment "
     "(no group), counting the records received.",
     [(f"{s} {p}", f"client/{n}/{p}") for p in ("produce", "consume") for s, n in
      (("100 B", 100), ("1 KB", 1000), ("10 KB", 10000))], THROUGHPUT_FIGURES),
    ("Partitions", "1-KB records, no compression, acks=1 (6 partitions: the record-size run).",
     [(f"{p} partitions {ph}", f"partitions/{p}/{ph}" if p != 6 else f"size/1000/{ph}")
      for ph in ("produce", "consume") for p in (1, 6, 100, 1000)], THROUGHPUT_FIGURES),
    ("Compression", "1-KB records, 6 partitions, acks=1 (none: the record-size run). The "
     "payloads are hex digits; rdkafka_performance and confluent-kafka send the same payload in "
     "every record, so batches compress far better than real data (ProducerPerformance draws "
     "fresh random letters for each record).",
     [(f"{c} {ph}", f"compression/{c}/{ph}" if c != "none" else f"size/1000/{ph}")
      for ph in ("produce", "consume") for c in ("none", "lz4", "zstd")], THROUGHPUT_FIGURES),
    ("Acks", "1-KB records, 6 partitions, no compression (acks=1: the record-size run).",
     [("acks=1 produce", "size/1000/produce"), ("acks=all produce", "acks/all/produce")],
     THROUGHPUT_FIGURES),
    ("Produce and consume together", "1-KB records, 6 partitions: producer and consumer "
     "start together on an empty topic; records/s and MB/s are the producer's, the consumer's "
     "follow.",
     [("produce+consume", "mixed/produce+consume")],
     THROUGHPUT_FIGURES[:2] + [("consume_records_per_s", "consumer records/s"),
                               ("consume_mb_per_s", "consumer MB/s")] + THROUGHPUT_FIGURES[2:]),
    ("A group of three consumers", "1-KB records on 6 partitions, read by three "
     "confluent-kafka members of one group (three processes); the rate runs from the first "
     "record to the last, the join time from subscribing until every member has partitions.",
     [("3 consumers", "group/3 consumers")],
     THROUGHPUT_FIGURES[:2] + [("join_ms", "join ms")] + THROUGHPUT_FIGURES[2:]),
    ("Idle connections", "1-KB records, 6 partitions, acks=1, produced while idle "
     "connections (each answered one ApiVersions) are held open, right after the same "
     "produce without them (the control: late in a run, every broker's produce is slower "
     "than in the record-size run, idle connections or not).",
     [("produce without idle connections", "idle/control"),
      ("produce with idle connections", "idle/produce")],
     [("idle_connections", "idle connections")] + THROUGHPUT_FIGURES),
]


def client_versions() -> dict[str, str]:
    import confluent_kafka

    return {"confluent-kafka": str(getattr(confluent_kafka, "__version__", "?")),
            "librdkafka": confluent_kafka.libversion()[0],
            "Kafka perf tools": brokers.apache_kafka.KAFKA_VERSION,
            "python": platform.python_version()}


def outcome(step: Step, figures: dict[str, Any] | None, error: str) -> str:
    """A short line for the progress output."""
    if figures is None:
        return "FAILED " + (error.splitlines()[0][:160] if error else "")
    if "p99_ms" in figures:
        return (f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, "
                f"p99.9 {figures['p999_ms']:.2f} ms")
    if "seconds" in figures and step.phase == "startup":
        return f"ready in {figures['seconds']:.2f} s"
    text = (f"{figures.get('records_per_s', 0):,.0f} records/s, "
            f"{figures.get('mb_per_s', 0):,.1f} MB/s")
    if "cpu_us_per_record" in figures:
        text += f", broker {figures['cpu_us_per_record']:.2f} µs/record"
    return text + f" [{figures.get('driver', '')}]"


class Results:
    """Index of ``results.json``: values of one figure per (step, broker)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.names = [n for n in brokers.NAMES if n in doc["brokers"]]
        self.by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for row in doc["results"]:
            self.by[(row["step"], row["broker"])].append(row)
        self.notes: list[str] = []

    def values(self, step: str, broker: str, key: str) -> list[float]:
        out = []
        for row in self.by.get((step, broker), []):
            fig = row["figures"]
            if key == "driver_busy" and fig.get("driver_wall_s"):
                out.append(fig.get("driver_cpu_s", 0) / fig["driver_wall_s"])
            elif isinstance(fig.get(key), int | float):
                out.append(float(fig[key]))
        return out

    def drivers(self, step: str, broker: str) -> set[str]:
        return {r["figures"].get("driver", "") for r in self.by.get((step, broker), [])
                if r["ok"]}

    def median(self, step: str, broker: str, key: str) -> float | None:
        found = stats.summary(self.values(step, broker, key))
        return found[0] if found else None

    def note(self, text: str) -> int:
        if text not in self.notes:
            self.notes.append(text)
        return self.notes.index(text) + 1

    def cell(self, step: str, broker: str, key: str) -> str:
        rows = self.by.get((step, broker), [])
        if not rows:
            return "not run"
        if key == "driver":
            drivers = sorted({r["figures"].get("driver", "") for r in rows if r["ok"]})
            return ", ".join(d for d in drivers if d) or "–"
        values = self.values(step, broker, key)
        failed = [r for r in rows if not r["ok"]]
        text = stats.cell(values) if values else ""
        if failed:
            n = self.note(f"{LABELS.get(broker, broker)}, `{step}`: "
                          + _one_line(failed[0]["error"]))
            mark = f"failed [{n}]" if not values else f"{len(failed)} failed [{n}]"
            text = f"{text} ({mark})" if text else mark
        return text or "–"


def _one_line(text: str, limit: int = 400) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    joined = " / ".join(lines[:4])
    return joined if len(joined) <= limit else joined[:limit] + "…"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _section(res: Results, rows: list[tuple[str, str]],
             figures: list[tuple[str, str]]) -> list[str]:
    body = []
    for label, step in rows:
        if not any((step, n) in res.by for n in res.names):
            continue
        first = True
        for key, name in figures + [("driver", "driver")]:
            cells = [res.cell(step, n, key) for n in res.names]
            if key != "driver" and all(c in ("–", "not run") for c in cells):
                continue
            body.append([label if first else "", name, *cells])
            first = False
    if not body:
        return []
    return _table(["workload", "figure", *(LABELS.get(n, n) for n in res.names)], body)


def _limits(doc: dict[str, Any]) -> list[str]:
    if not doc["limits"]:
        return ["Not measured in this run."]
    return _table(["limit", "MB/s"], ([k, stats.cell(v)] for k, v in doc["limits"].items()))


def _goal(res: Results, goal: str, measured: float | None, target: float, unit: str,
          at_most: bool, basis: str = "") -> list[str]:
    if measured is None:
        return [goal, "not measured", "–"]
    met = measured <= target if at_most else measured >= target
    text = f"{stats.number(measured)} {unit}".strip() + (f" ({basis})" if basis else "")
    return [goal, text, "met" if met else "**not met**"]


def _goals(res: Results) -> list[str]:
    doc = res.doc
    rows: list[list[str]] = []
    # Throughput against the best peer, on every throughput step.
    steps = [s for s, info in doc["steps"].items()
             if info["phase"] in ("produce", "consume", "produce+consume", "group")
             and not s.startswith("startup/")]
    ahead, behind, compared = 0, [], 0
    for step in steps:
        ours = res.median(step, "odradek", "records_per_s")
        driver = res.drivers(step, "odradek")
        # Only figures driven by the same client are compared.
        peers = [v for n in res.names if n != "odradek" and res.drivers(step, n) == driver
                 if (v := res.median(step, n, "records_per_s")) is not None]
        if ours is None or not peers:
            continue
        compared += 1
        if ours >= max(peers):
            ahead += 1
        else:
            behind.append(f"`{step}` {ours / max(peers):.0%}")
    if compared:
        rows.append(["throughput ≥ best peer in every workload (same driver)",
                     f"{ahead} of {compared} workloads"
                     + (f"; behind in: {', '.join(behind)}" if behind else ""),
                     "met" if ahead == compared else "**not met**"])
    else:
        rows.append(["throughput ≥ best peer in every workload", "no peer measured", "–"])
    rows.append(_goal(res, "broker CPU ≤ 0.1 µs per 100-B record produced",
                      res.median("size/100/produce", "odradek", "cpu_us_per_record"), 0.1,
                      "µs", at_most=True))
    rows.append(_goal(res, "broker CPU ≤ 0.05 µs per 100-B record fetched",
                      res.median("size/100/consume", "odradek", "cpu_us_per_record"), 0.05,
                      "µs", at_most=True))
    for phase, limit, what in (("produce", "mmap copy", "produce"),
                               ("consume", "sendfile", "fetch")):
        mbps = res.median(f"size/10000/{phase}", "odradek", "mb_per_s")
        raw = stats.summary(doc["limits"].get(limit, []))
        share = mbps / raw[0] if mbps is not None and raw else None
        basis = f"{stats.number(mbps)} of {stats.number(raw[0])} MB/s" if share is not None \
            and mbps is not None and raw else ""
        rows.append(_goal(res, f"10-KB {what} ≥ 50% of {limit} bandwidth",
                          None if share is None else share * 100, 50, "%", at_most=False,
                          basis=basis))
    rows.append(_goal(res, "p99 end-to-end ≤ 5 ms at 2,000 records/s",
                      res.median("latency/2000/fixed rate", "odradek", "p99_ms"), 5, "ms",
                      at_most=True))
    n100 = doc["steps"].get("size/100/produce", {}).get("records", 0)
    rows.append(_goal(res, "RSS ≤ 150 MB after 10M records",
                      res.median("size/100/produce", "odradek", "rss_mb"), 150, "MB",
                      at_most=True, basis=f"after {n100:,} records; anon "
                      f"{stats.number(res.median('size/100/produce', 'odradek', 'anon_mb') or 0)}"
                      " MB"))
    return _table(["goal (Odradek)", "measured (median)", "status"], rows)


def _latency(res: Results) -> list[str]:
    rows = [(f"{rate:,} records/s", f"latency/{rate}/fixed rate") for rate in (500, 2000, 20000)]
    rows.append(("closed loop (EndToEndLatency)", "latency/closed-loop/EndToEndLatency"))
    return _section(res, rows, LATENCY_FIGURES)


def _startup(res: Results) -> list[str]:
    rows = []
    for step, label in (("startup/after SIGKILL", "after SIGKILL"),
                        ("startup/after clean stop", "after a clean stop")):
        if any((step, n) in res.by for n in res.names):
            rows.append([label, *(res.cell(step, n, "seconds") for n in res.names)])
    if not rows:
        return []
    write = [["write (records/s, MB/s)",
              *(f"{res.cell('startup/write', n, 'records_per_s')}, "
                f"{res.cell('startup/write', n, 'mb_per_s')} MB/s"
                if ("startup/write", n) in res.by else "not run" for n in res.names)]]
    sizes = {n: res.values("startup/after clean stop", n, "log_gb") for n in res.names}
    log = [["log size GB", *(stats.cell(sizes[n][:1]) if sizes[n] else "–"
                              for n in res.names)]]
    return _table(["start-up (s, exec until ListOffsets answers)",
                   *(LABELS.get(n, n) for n in res.names)], write + log + rows)


def render(doc: dict[str, Any], out: Path) -> Path:
    """Write ``out/performance.md`` and its plots; return the report's path."""
    res = Results(doc)
    meta = doc["meta"]
    images = plots.draw(res, out / "performance")
    lines = ["# Performance", "",
             "Generated by `bench/run.py` (`make bench`) from `performance/results.json`; "
             "do not edit by hand (`python bench/run.py --render-only` re-renders it). "
             "`make bench` runs the full comparison (`python bench/run.py`, three "
             "repetitions, about 20 minutes on 2 cores); `python bench/run.py --help` "
             "lists the filters (`--brokers`, `--workloads`, `--quick`, `--scale`).", ""]
    if meta.get("quick"):
        lines += ["**Quick run (`--quick`): tiny sizes, for checking the harness only; "
                  "these figures say nothing about performance.**", ""]
    if meta.get("scale"):
        lines += [f"**Scaled run (`--scale {meta['scale']}`): record counts and durations are "
                  f"{meta['scale']:g} times the full run's; the goals speak of the full run.**",
                  ""]
    lines += [f"- Date: {meta['date']}", f"- Command: `{meta['command']}`",
              f"- Repetitions: {meta['repeat']} (each figure: median [min–max])"]
    if "duration_s" in meta:
        lines.append(f"- Duration: {meta['duration_s'] / 60:.1f} min "
                     f"(estimated {meta.get('estimate_s', 0) / 60:.1f} min)")
    lines += ["", "## Machine", ""]
    lines += _table(["", ""], ([k, v] for k, v in meta["machine"].items()))
    lines += ["", "Load drivers: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
              + "."]
    built = meta.get("rdkafka_performance") or {}
    if built.get("source"):
        lines[-1] += (f" `{NATIVE}` = librdkafka's own load generator (C) in a child "
                      f"process, built from the {built['source']} against Debian's "
                      f"librdkafka-dev {built.get('linked', '?')}, run with librdkafka "
                      f"{built.get('library', '?')}"
                      + (" (confluent-kafka's: Debian's 2.0.2 cannot read Tansu's ApiVersions "
                         "response; one library for every broker)"
                         if built.get("runtime") == "confluent-kafka" else "") + ".")
    elif built.get("error"):
        lines[-1] += f" `{NATIVE}` could not be built: {_one_line(built['error'], 300)}."
    lines[-1] += (f" `{JAVA}` = Kafka's `ProducerPerformance`/`ConsumerPerformance`/"
                  f"`EndToEndLatency` (JVM, `-Xmx512M`); `{RDKAFKA}` = confluent-kafka in a "
                  "child process (Python). Every figure names the driver behind it; "
                  "`driver CPU s / wall s` near or above 1 means the driver may have been the "
                  "bottleneck.")
    if meta.get("pinned"):
        lines += ["", f"Pinned (`--pin`): {meta['pinned']}, during each broker's steps."]
    lines += ["", "## Brokers", ""]
    brows = []
    for name in res.names:
        info = doc["brokers"][name]
        state = "ran" if info.get("status") == "ok" else f"**could not start**: " \
            f"{_one_line(info.get('reason', ''))}"
        notes = []
        if info.get("native"):  # results.json of before rdkafka_performance
            notes.append(f"native driver unusable, confluent-kafka drove its throughput "
                         f"steps: {_one_line(info['native'], 300)}")
        for driver, why in (info.get("unusable") or {}).items():
            notes.append(f"{driver} unusable: {_one_line(why, 300)}")
        if info.get("startup"):
            notes.append(f"start-up: {info['startup']}")
        brows.append([LABELS.get(name, name), info.get("describe", ""), state,
                      "; ".join(notes)])
    lines += _table(["broker", "what", "state", "notes"], brows)
    lines += ["", "All on 127.0.0.1, one broker at a time, each repetition on a fresh broker "
              "and data directory. Broker CPU is user+system time of the broker's process "
              "(all threads) from `/proc/<pid>/stat` over the step; RSS is `VmRSS` after it "
              "(it includes mapped page-cache pages; the goals table also gives the anonymous "
              "part). Before the first step each broker gets a warm-up (100-B records "
              "produced and consumed, not measured), so that Kafka's JIT has compiled its "
              "produce path.", "",
              "Pinning (`--pin`: the broker on one CPU, the drivers on the other) is off by "
              "default: on the shared 2-core development machine (2026-11-25; record sizes, "
              "Odradek and Kafka, three repetitions, two runs each way) it did not reduce the "
              "spread: (max−min)/median of records/s averaged 36% (Kafka) and 47% (Odradek) "
              "unpinned, 52% and 76% pinned. It also takes Kafka's JVM down to one CPU. "
              "Whether it helps on a quiet machine is for a `--pin` run to show.",
              "", "## Machine limits", ""]
    lines += _limits(doc)
    lines += ["", "## Goals", ""]
    lines += _goals(res)
    for title, text, rows, figures in SECTIONS:
        table = _section(res, rows, figures)
        if table:
            lines += ["", f"## {title}", "", text, ""] + table
    latency = _latency(res)
    if latency:
        lines += ["", "## End-to-end latency", "",
                  "100-B records on one partition, sent at a fixed rate by confluent-kafka "
                  "with `linger.ms=0` and acks=all (at 500 and 2,000 records/s each record is "
                  "its own Produce request), each stamped with its send time and timed when "
                  "a consumer in another process receives it, after a warm-up that lasts until "
                  "the consumer receives records. The achieved rate is shown; a broker that "
                  "cannot keep up queues records in the client, and that wait counts. The "
                  "closed-loop row is Kafka's `EndToEndLatency` (one record in flight, whole "
                  "milliseconds).", ""] + latency
    startup = _startup(res)
    if startup:
        lines += ["", "## Start-up with a large log", "",
                  "10-KB records written through the broker to 6 partitions with the native "
                  "producer (the write row), then SIGKILL and restart (once), and clean stop "
                  "and restart (each repetition). Timed from exec until the broker answers "
                  "ListOffsets with the end offsets it had before.", ""] + startup
    if images:
        lines += ["", "## Plots", ""]
        lines += [f"![{title}](performance/{name})" for name, title in images]
    if res.notes:
        lines += ["", "## Failures", ""]
        lines += [f"{i}. {text}" for i, text in enumerate(res.notes, 1)]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "performance.md"
    path.write_text("\n".join(lines) + "\n")
    return path
