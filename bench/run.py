"""Benchmark Odradek against Tansu and Apache Kafka, and the machine's limits; write the report.

    python bench/run.py                       # everything, --repeat 3 (the lead's full run)
    python bench/run.py --quick --brokers odradek --workloads size,latency
    python bench/run.py --render-only         # re-render docs/performance.md from results.json

Brokers run one at a time on 127.0.0.1, each repetition on a fresh broker and data
directory; the machine's limits are measured once per repetition. Results go to
``<out>/performance/results.json`` after every step, and the report to
``<out>/performance.md`` with its PNGs in ``<out>/performance/``. ``--list`` prints the
plan and its estimated duration without running it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from suite import brokers, machine, progress, rdkafka_perf, report, workloads  # noqa: E402
from suite.startup import startup_unit  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, development)")
    parser.add_argument("--brokers", default=",".join(brokers.NAMES),
                        help=f"comma-separated, of {','.join(brokers.NAMES)}")
    parser.add_argument("--workloads", default=",".join((*workloads.WORKLOADS, "limits")),
                        help=f"comma-separated, of {','.join(workloads.WORKLOADS)},limits; "
                        "or unit ids (see --list) such as size/1000,latency/2000")
    parser.add_argument("--scale", type=float, default=None,
                        help="scale the full run's record counts, durations and start-up log "
                        "(e.g. 0.1 for a moderate run)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median, min, max)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="writes OUT/performance.md and OUT/performance/ (default docs/)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where brokers keep their data (default: a temporary directory)")
    parser.add_argument("--render-only", action="store_true",
                        help="re-render the report from OUT/performance/results.json")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=False,
                        help="pin each broker to CPU 0 and the load drivers to CPU 1 during "
                        "the broker steps (default: off; see docs/performance.md)")
    parser.add_argument("--list", action="store_true", help="print the plan and its estimate")
    args = parser.parse_args(argv)
    args.broker_names = [b for b in args.brokers.split(",") if b]
    args.workload_names = {w for w in args.workloads.split(",") if w}
    unknown = set(args.broker_names) - set(brokers.NAMES)
    unknown |= {w for w in args.workload_names if w.split("/")[0] not in workloads.WORKLOADS
                and w != "limits"}
    if unknown:
        parser.error(f"unknown broker or workload: {', '.join(sorted(unknown))}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        parser.error("--pin needs two CPUs")
    return args


# --pin: the broker on the first CPU, this process and the drivers it starts on the second.
CPUS = sorted(os.sched_getaffinity(0))
BROKER_CPUS, DRIVER_CPUS = {CPUS[0]}, {CPUS[-1]}
PINNED = f"broker on CPU {CPUS[0]}, load drivers on CPU {CPUS[-1]}"


@contextlib.contextmanager
def drivers_pinned(pin: bool) -> Iterator[None]:
    """While inside: this process, and so every driver it starts, runs on DRIVER_CPUS."""
    if not pin:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, DRIVER_CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# How long a broker's steps take against the plan's estimates (which are Odradek's pace),
# seen on the 2-core development machine; only the printed estimate uses them.
PACE = {"odradek": 1.0, "kafka": 1.0, "tansu": 0.85}


def raise_fd_limit() -> None:
    """Idle connections need more than the usual 1024 descriptors, here and in the brokers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Run:
    """The state of one run: the results document, saved after every step."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.sizes = workloads.QUICK if args.quick else workloads.FULL
        if args.scale and not args.quick:
            self.sizes = workloads.scaled(workloads.FULL, args.scale)
        self.units = workloads.plan(self.sizes, args.workload_names)
        self.with_limits = "limits" in args.workload_names
        self.limit_size = (64 if args.quick else 1024) * 2**20
        self.results_path = args.out / "performance" / "results.json"
        self.doc: dict[str, Any] = {
            "meta": {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "command": "python bench/run.py " + shlex.join(argv),
                "quick": args.quick, "scale": args.scale, "repeat": args.repeat,
                "pinned": PINNED if args.pin else "",
                "machine": machine.machine_info(), "versions": report.client_versions(),
                "sizes": dataclasses.asdict(self.sizes),
            },
            "brokers": {}, "limits": {}, "steps": {}, "results": [],
        }

    def startup_wanted(self, name: str) -> bool:
        return "startup" in self.args.workload_names and name != "tansu"

    def estimate(self) -> tuple[int, float]:
        per_repeat = sum(u.estimate_s + 3 for u in self.units)
        steps = sum(len(u.steps) for u in self.units) * self.args.repeat
        total_steps = steps * len(self.args.broker_names)
        total = 0.0
        start = startup_unit(self.sizes.startup_bytes, self.args.repeat)
        for name in self.args.broker_names:
            total += (per_repeat + 16) * self.args.repeat * PACE.get(name, 1.0)
            if self.startup_wanted(name):
                total += start.estimate_s * PACE.get(name, 1.0)
                total_steps += len(start.steps)
        if self.with_limits:
            total += self.args.repeat * 7 * self.limit_size / 300e6
            total_steps += self.args.repeat
        return total_steps, total

    def save(self) -> None:
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.results_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1))
        tmp.replace(self.results_path)

    def record(self, name: str, repeat: int, step: workloads.Step,
               figures: dict[str, Any] | None, error: str) -> None:
        self.doc["steps"].setdefault(step.id, {"phase": step.phase, "records": step.records,
                                               "size": step.size})
        self.doc["results"].append({"broker": name, "step": step.id, "repeat": repeat,
                                    "ok": figures is not None, "error": error,
                                    "figures": figures or {}})
        self.save()

    def run_units(self, name: str, repeat: int, units: list[workloads.Unit],
                  workdir: Path, prog: progress.Progress) -> None:
        info = self.doc["brokers"].setdefault(name, {"status": "ok", "reason": "",
                                                     "unusable": None})
        try:
            broker = brokers.make_broker(name, workdir / f"r{repeat}",
                                         BROKER_CPUS if self.args.pin else None)
            info["describe"] = broker.describe()
            started_s = broker.start()
        except brokers.BrokerUnavailable as exc:
            info.update(status="unavailable", reason=str(exc))
            prog.note(f"{name}: cannot start: {str(exc).splitlines()[0]}")
            for unit in units:
                for step in unit.steps:
                    self.record(name, repeat, step, None, f"broker unavailable: {exc}")
                    prog.step(f"{name} r{repeat} {step.id}", step.estimate_s, "skipped")
            return
        try:
            prog.note(f"{name} r{repeat}: started in {started_s:.2f} s on {broker.bootstrap}")
            ctx = workloads.Context(broker, self.sizes, f"{name}{repeat}")
            ctx.unusable = workloads.driver_check(ctx, java=workloads.needs_java(units))
            if info["unusable"] is None:
                unusable = {d: why for d, why in ctx.unusable.items()
                            if why != "not needed by this run"}
                info["unusable"] = unusable
                for driver, why in unusable.items():
                    prog.note(f"{name}: {driver} unusable: {why[:200]}")
                prog.note(f"{name}: throughput steps driven by {ctx.driver()}")
            if any(u.id != "startup" for u in units):
                try:
                    workloads.warm_up(ctx)
                except Exception as exc:  # noqa: BLE001 - the steps will show what is wrong
                    prog.note(f"{name}: warm-up failed: {str(exc).splitlines()[0][:200]}")
            with drivers_pinned(self.args.pin):
                for unit in units:
                    for step, figures, error in workloads.run_unit(ctx, unit):
                        self.record(name, repeat, step, figures, error)
                        outcome = report.outcome(step, figures, error)
                        prog.step(f"{name} r{repeat} {step.id}", step.estimate_s, outcome)
        finally:
            broker.remove()

    def run(self) -> None:
        total_steps, estimate = self.estimate()
        print(f"plan: {len(self.args.broker_names)} brokers x {self.args.repeat} repetitions, "
              f"{total_steps} steps, estimated {progress.clock(estimate)}", flush=True)
        if self.args.list:
            for unit in self.units:
                print(f"  {unit.id}: {', '.join(s.id for s in unit.steps)} "
                      f"(~{unit.estimate_s:.0f} s per broker and repetition)")
            return
        raise_fd_limit()
        prog = progress.Progress(total_steps, estimate)
        try:  # before the first broker, so that no step's time includes the build
            rdkafka_perf.ensure_built(log=prog.note)
            self.doc["meta"]["rdkafka_performance"] = rdkafka_perf.describe()
        except rdkafka_perf.Unavailable as exc:
            self.doc["meta"]["rdkafka_performance"] = {"error": str(exc)}
            prog.note(f"rdkafka_performance cannot be built, other drivers instead: {exc}")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="odradek-bench-",
                                         dir=self.args.workdir) as tmp:
            workdir = Path(tmp)
            for repeat in range(self.args.repeat):
                if self.with_limits:
                    limits = machine.measure_limits(workdir / "limits", self.limit_size)
                    for key, value in limits.items():
                        self.doc["limits"].setdefault(key, []).append(value)
                    self.save()
                    prog.step(f"machine limits r{repeat}", 7 * self.limit_size / 300e6,
                              ", ".join(f"{k} {v:,.0f} MB/s" for k, v in limits.items()))
                for name in self.args.broker_names:
                    self.run_units(name, repeat, self.units, workdir / name, prog)
            for name in self.args.broker_names:
                if name == "tansu" and "startup" in self.args.workload_names:
                    self.doc["brokers"].setdefault(name, {})["startup"] = (
                        "not measured: memory storage, no log to load")
                if self.startup_wanted(name):
                    unit = startup_unit(self.sizes.startup_bytes, self.args.repeat)
                    self.run_units(name, 0, [unit], workdir / f"{name}-startup", prog)
        self.doc["meta"]["duration_s"] = time.monotonic() - started
        self.doc["meta"]["estimate_s"] = estimate
        self.save()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C: brokers and drivers are stopped, the temp dir removed.
    signal.signal(signal.SIGTERM, _interrupt)
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    results = args.out / "performance" / "results.json"
    if not args.render_only:
        Run(args, argv).run()
        if args.list:
            return 0
    if not results.exists():
        print(f"no results at {results}", file=sys.stderr)
        return 1
    path = report.render(json.loads(results.read_text()), args.out)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
