"""Run the clients' own test suites, each against a fresh broker, and report pass counts.

    python compat/suites/run.py [--suites kafka-python,librdkafka,franz-go] [--skip-fetch]
                                [--broker odradek|kafka] [--report-dir DIR] [--keep-logs]
                                [--update-allowlist]

How this works
--------------
For each suite (harness/suites.py):

1. `fetch.sh` in its folder obtains the pinned suite from its package registry and builds it
   into the git-ignored `work/` (idempotent; `--skip-fetch` skips it).
2. A fresh broker starts with the settings the suite's own harness gives its brokers
   (harness/brokers.py): Odradek by default, or Apache Kafka 4.4 with `--broker kafka` to
   compare.
3. The suite runs against it, with the allow-list's exclusions deselected where the suite
   allows it, and its own result file is read (JUnit XML, librdkafka's JSON report, Go test
   events) into pass / fail / skip per test (harness/results.py).
4. The broker is stopped; a crash, a traceback in its log or an unclean exit is reported.
5. The outcomes are judged against `allowlist.txt`: an allow-listed test that did not pass
   is a regression; a passing test not on it is reported as newly passing (and appended to
   the allow-list with `--update-allowlist`, which is how the lists are kept).

Then REPORT-suites.md (the "Clients' own test suites" section of compat/REPORT.md) and
suites.json are written into `--report-dir` (default: compat/suites/). Progress goes to
stderr; the logs (broker, fetch, the suites' output) are in a temporary directory, kept
with `--keep-logs` or when something failed. Exit code: 0 when every suite ran, no
allow-listed test regressed and every broker ended cleanly; 1 otherwise; 2 on usage errors.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import allowlist, brokers, report, results  # noqa: E402
from harness.report import SuiteRun  # noqa: E402
from harness.suites import SUITES, Suite  # noqa: E402

FETCH_TIMEOUT_S = 1800.0


def progress(message: str) -> None:
    print(f"[suites] {message}", file=sys.stderr, flush=True)


def run_command(argv: list[str], cwd: Path, env: dict[str, str], stdout: Path, log: Path,
                timeout: float) -> int | None:
    """Run in its own process group; None when it was killed at the timeout. With `log`
    the same file as `stdout`, stderr goes there too."""
    with open(stdout, "wb") as out, open(log, "ab") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT if log == stdout else err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


def fetch(suite: Suite, logs: Path) -> str:
    """Run the suite's fetch.sh; an error message, or '' when it is ready."""
    progress(f"{suite.name}: fetching and building (fetch.sh)")
    log = logs / f"{suite.name}-fetch.log"
    code = run_command(["bash", str(suite.folder / "fetch.sh")], suite.folder, {}, log, log,
                       FETCH_TIMEOUT_S)
    if code == 0:
        return ""
    tail = log.read_text(errors="replace").strip().splitlines()[-5:]
    return (f"fetch.sh {'timed out' if code is None else f'exited with {code}'}: "
            + " ⏎ ".join(tail))


def run_suite(suite: Suite, broker_kind: str, logs: Path, skip_fetch: bool) -> SuiteRun:
    run = SuiteRun(suite)
    started = time.monotonic()
    try:
        allow = allowlist.load(suite.folder / "allowlist.txt")
    except allowlist.AllowListError as exc:
        run.error = str(exc)
        return run
    run.exclusions = len(allow.excluded)
    if not skip_fetch:
        run.error = fetch(suite, logs)
        if run.error:
            progress(f"{suite.name}: {run.error}")
            return run
    start_broker = brokers.kafka if broker_kind == "kafka" else brokers.odradek
    workdir = Path(tempfile.mkdtemp(prefix=f"{suite.name}-", dir=logs))
    try:
        with start_broker(suite.broker_settings, workdir) as broker:
            run.broker = broker
            progress(f"{suite.name}: running against {broker_kind} at {broker.bootstrap}")
            inv = suite.command(broker.bootstrap, sorted(allow.excluded), logs)
            code = run_command(inv.argv, inv.cwd, inv.env, inv.stdout,
                               inv.stdout if inv.merge_stderr else logs / f"{suite.name}.log",
                               suite.timeout_s)
            if code is None:
                run.error = f"timed out after {suite.timeout_s:.0f} s (partial results kept)"
            try:
                run.outcomes = suite.read(inv.result_file)
            except (OSError, ValueError) as exc:
                run.error = run.error or f"no result file ({exc}); exit code {code}"
    except Exception as exc:  # a broker that did not start: the suite did not run
        run.error = run.error or f"{type(exc).__name__}: {exc}"
    run.verdict = results.judge(run.outcomes, allow)
    run.seconds = time.monotonic() - started
    v = run.verdict
    progress(f"{suite.name}: {len(v.passed)}/{v.in_scope} passed, {len(v.failed)} failed, "
             f"{len(v.skipped)} skipped, {len(v.excluded)} excluded, {len(v.regressions)} "
             f"regressions, {len(v.newly_passing)} newly passing ({run.seconds:.0f} s)"
             + (f"; broker: {run.broker.health}" if run.broker else ""))
    return run


def update_allowlist(run: SuiteRun) -> None:
    """Append the newly passing tests to the suite's allowlist.txt as `pass` lines."""
    new = run.verdict.newly_passing
    if not new or run.error:
        return
    path = run.suite.folder / "allowlist.txt"
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "".join(f"pass {test_id}\n" for test_id in new))
    progress(f"{run.suite.name}: added {len(new)} passing test(s) to {path}")


def read_verifiable(path: Path | None) -> dict[str, object] | None:
    """The verifiable run's summary; an unreadable one is reported as an error."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"error": f"no summary in {path}: {exc}"}
    return data if isinstance(data, dict) else {"error": f"not a JSON object: {path}"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="compat/suites/run.py", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default=",".join(SUITES),
                        help=f"comma-separated, of {', '.join(SUITES)} (default: all)")
    parser.add_argument("--broker", choices=("odradek", "kafka"), default="odradek",
                        help="the broker under test; kafka = Apache Kafka 4.4, to compare")
    parser.add_argument("--skip-fetch", action="store_true",
                        help="do not run the suites' fetch.sh (already fetched and built)")
    parser.add_argument("--report-dir", type=Path, default=HERE,
                        help="where REPORT-suites.md and suites.json go (default: "
                             "compat/suites/)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs directory")
    parser.add_argument("--verifiable-summary", type=Path, metavar="FILE",
                        help="the JSON summary compat/kafka-verifiable/run.py printed, to "
                             "report beside the suites (make compat-suites passes it)")
    parser.add_argument("--update-allowlist", action="store_true",
                        help="append newly passing tests to the suites' allowlist.txt")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.suites.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown or not names:
        print(f"compat/suites/run.py: unknown suite(s) {unknown}; known: {list(SUITES)}",
              file=sys.stderr)
        return 2
    logs = Path(tempfile.mkdtemp(prefix="odradek-suites-"))
    progress(f"logs in {logs}")
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = [run_suite(SUITES[name], args.broker, logs, args.skip_fetch) for name in names]
    if args.update_allowlist:
        for run in runs:
            update_allowlist(run)
    label = ("Apache Kafka 4.4 (reference, `--broker kafka`)" if args.broker == "kafka"
             else f"Odradek {brokers.odradek_version()}")
    verifiable = read_verifiable(args.verifiable_summary)
    md, js = report.write(args.report_dir, runs, date, label, verifiable)
    progress(f"wrote {md} and {js}")
    failed = any(run.error or run.verdict.regressions
                 or (run.broker is not None and not run.broker.healthy) for run in runs)
    failed = failed or (verifiable is not None and not verifiable.get("passed"))
    if args.keep_logs or failed:
        progress(f"logs kept in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
