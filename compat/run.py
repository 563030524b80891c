"""Run the compatibility matrix: every client of compat/*/client.json against one fresh broker.

    python compat/run.py [--clients a,b] [--scenarios s1,s2,...] [--skip-install]
                         [--report-dir DIR] [--bootstrap HOST:PORT] [--broker-cmd CMD]
                         [--override KEY=VALUE]... [--jobs N] [--keep-logs]

How this works
--------------
1. Start a fresh Odradek (`odradek serve`, temporary data dir, free port; `runner/broker.py`)
   unless `--bootstrap` names a running broker.
2. Install each client (its manifest's `install` commands, in its folder, with a timeout;
   `--skip-install` skips them). A failed install makes the row "not installed".
3. The produce-codec phase: every installed client runs its selected `produce-codec-*`.
4. Each installed client runs its other scenarios, and `consume-codec-<codec>:<writer>` for
   the previous client in the order that wrote that codec (`catalogue.pick_writer`).
5. Stop the broker with SIGTERM; an exit code other than 0 or a traceback in its log is
   reported (and makes the runner exit 1).
6. Write `REPORT.md` and `report.json` into `--report-dir` (default: compat/).

`--jobs N` runs up to N clients' drivers at once within each phase (installs stay one at a
time); topics are per client, so only the phases order them. Progress goes to stderr. Logs
(broker, installs, drivers' stderr) are in a temporary directory printed at the start, removed
at the end unless `--keep-logs` or the broker was unhealthy. The exit code is 0 when the report
was written and the broker ended cleanly, whatever the cells say; 1 when the broker crashed or
logged a traceback; 2 on usage errors or when the broker did not start.
"""

from __future__ import annotations

import argparse
import datetime
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from runner import catalogue, execute, report  # noqa: E402
from runner.broker import (  # noqa: E402
    BrokerHealth,
    BrokerStartError,
    OdradekProcess,
    odradek_command,
)
from runner.execute import Result, progress  # noqa: E402


def broker_version() -> str:
    try:
        with open(REPO / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def git_commit() -> str:
    """HEAD's short hash, "+ local changes" when tracked files differ from it (read-only)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "diff-index", "--quiet", "HEAD", "--"], cwd=REPO,
                               capture_output=True, timeout=30).returncode == 1
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head} + local changes" if head and dirty else head or "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="compat/run.py",
        description="Run the client compatibility matrix against a fresh Odradek broker.")
    parser.add_argument("--clients", help="comma-separated client folders (default: all)")
    parser.add_argument("--scenarios",
                        help="comma-separated scenario ids or globs, e.g. 'metadata,produce-"
                             "codec-*' (default: all; consume-codec-X brings produce-codec-X)")
    parser.add_argument("--skip-install", action="store_true",
                        help="do not run the clients' install commands")
    parser.add_argument("--report-dir", type=Path, default=HERE,
                        help="where REPORT.md and report.json go (default: compat/)")
    parser.add_argument("--bootstrap", help="use this running broker (HOST:PORT)")
    parser.add_argument("--broker-cmd",
                        help="command that starts the broker; {port} and {dir} are filled in, "
                             "otherwise Odradek's --override arguments are appended")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra broker config for the broker the runner starts")
    parser.add_argument("--jobs", type=int, default=1,
                        help="clients whose drivers run at once in each phase (default 1)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temporary directory with the logs")
    return parser.parse_args(argv)


def split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def each(jobs: int, rows: list[report.Row], work: Callable[[report.Row], None]) -> None:
    """`work(row)` for every row, up to `jobs` at a time; an exception is re-raised."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(work, row) for row in rows]:
            future.result()


def run_matrix(clients: list[catalogue.Client], scenarios: list[str], bootstrap: str,
               run_id: str, log_dir: Path, skip_install: bool, jobs: int = 1,
               broker_alive: Callable[[], bool] = lambda: True) -> list[report.Row]:
    """Install, then the produce-codec phase, then the rest; the rows with their cells.

    A driver is not started once the broker has exited: its scenarios fail with that reason
    instead of waiting out the client's timeouts.
    """
    rows = [report.Row(client) for client in clients]
    for row in rows:
        if skip_install:
            continue
        progress(f"installing {row.client.name} ({row.client.client})")
        row.installed, row.install_error = execute.install(row.client, log_dir)
        if not row.installed:
            progress(f"{row.client.name}: NOT INSTALLED: {row.install_error.splitlines()[0]}")
    ready = [row for row in rows if row.installed]

    produce = [s for s in scenarios if catalogue.is_produce_codec(s)]
    def drive(row: report.Row, to_run: list[str], phase: str) -> dict[str, Result]:
        if not broker_alive():
            return {s: Result("fail", "not run: the broker had exited") for s in to_run}
        progress(f"{row.client.name}: {phase} ({len(to_run)} scenarios)")
        return execute.run_driver(row.client, bootstrap, run_id, to_run, log_dir, phase,
                                  broker_alive)

    def produce_phase(row: report.Row) -> None:
        row.results.update(drive(row, produce, "produce-codec"))

    if produce:
        each(jobs, ready, produce_phase)
    wrote = {row.client.name: {s.removeprefix("produce-codec-") for s in produce
                               if row.results[s].status == "pass"} for row in ready}
    order = [row.client.name for row in ready]

    def main_phase(row: report.Row) -> None:
        to_run: list[str] = []
        column_of: dict[str, str] = {}
        writers: dict[str, str] = {}
        for scenario in scenarios:
            if catalogue.is_produce_codec(scenario):
                continue
            if catalogue.is_consume_codec(scenario):
                codec = scenario.removeprefix("consume-codec-")
                writer = catalogue.pick_writer(row.client.name, codec, order, wrote)
                if writer is None:
                    row.results[scenario] = Result(
                        "n/a", f"no client wrote {codec} in this run")
                    continue
                writers[scenario] = writer
                column_of[f"{scenario}:{writer}"] = scenario
                to_run.append(f"{scenario}:{writer}")
            else:
                column_of[scenario] = scenario
                to_run.append(scenario)
        if not to_run:
            return
        for name, result in drive(row, to_run, "main").items():
            column = column_of[name]
            result.writer = writers.get(column, "")
            row.results[column] = result

    each(jobs, ready, main_phase)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        clients = catalogue.discover(HERE, split(args.clients))
        scenarios = catalogue.select_scenarios(split(args.scenarios))
    except (ValueError, catalogue.ManifestError) as exc:
        print(f"compat/run.py: {exc}", file=sys.stderr)
        return 2
    if not clients:
        print("compat/run.py: no client (no compat/*/client.json)", file=sys.stderr)
        return 2

    run_id = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix=f"odradek-compat-{run_id}-"))
    log_dir = workdir / "logs"
    log_dir.mkdir()
    progress(f"run id {run_id}; logs in {log_dir}")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    broker: OdradekProcess | None = None
    if args.bootstrap:
        bootstrap = args.bootstrap
        progress(f"using the running broker at {bootstrap}")
    else:
        command = shlex.split(args.broker_cmd) if args.broker_cmd else odradek_command()
        broker = OdradekProcess(command, workdir, REPO, args.override)
        broker.log_path = log_dir / "broker.log"
        try:
            broker.start()
        except BrokerStartError as exc:
            print(f"compat/run.py: {exc}", file=sys.stderr)
            return 2
        bootstrap = broker.bootstrap
        progress(f"broker started at {bootstrap} (log {broker.log_path})")

    try:
        rows = run_matrix(clients, scenarios, bootstrap, run_id, log_dir, args.skip_install,
                          args.jobs, broker.alive if broker else lambda: True)
    finally:
        health = broker.stop() if broker else BrokerHealth(external=True)
    progress(f"broker: {health.describe()}")

    info = report.RunInfo(date=started, broker_version=broker_version(), commit=git_commit(),
                          bootstrap=bootstrap, run_id=run_id, health=health,
                          scenarios=scenarios)
    md, js = report.write(args.report_dir, rows, info)
    total = report.counts(rows, scenarios)
    progress(f"{total['pass']} pass, {total['fail']} fail, {total['n/a']} n/a; "
             f"wrote {md} and {js}")
    if args.keep_logs or not health.ok:
        progress(f"logs kept in {log_dir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if health.ok else 1


if __name__ == "__main__":
    sys.exit(main())
