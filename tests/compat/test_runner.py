"""compat/run.py's own logic, with stand-in clients and no broker (fast).

Stand-in client folders hold a `client.json` whose driver is a short Python script: one that
prints some results and crashes, one that hangs, one whose install fails. The matrix phases
(`run_matrix`) run them against an address nothing listens on, since no driver here
connects. Also: the writer ring of `consume-codec`, scenario selection, traceback detection
in a broker log, and the REPORT.md footnotes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compat_run", REPO / "compat" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = _load_run()
from runner import broker, catalogue, report  # noqa: E402  (on sys.path via compat/run.py)

DRIVER_PRINTS_AND_CRASHES = """
import json, sys
args = sys.argv[sys.argv.index("--scenarios") + 1].split(",")
print("a log line on stdout, not a result", flush=True)
for s, status, reason in [("metadata", "pass", ""), ("topics-admin", "n/a", "no admin API"),
                          ("produce-consume", "fail", "Mismatch: offsets")]:
    if s in args:
        print(json.dumps({"scenario": s, "status": status, "reason": reason, "seconds": 0.1}),
              flush=True)
print("Traceback: boom", file=sys.stderr)
sys.exit(3)
"""

DRIVER_HANGS = """
import json, sys, time
print(json.dumps({"scenario": "metadata", "status": "pass", "reason": "", "seconds": 0}),
      flush=True)
time.sleep(60)
"""


def make_client(root: Path, name: str, driver: str, install: list[list[str]] | None = None,
                timeout_s: float = 30) -> catalogue.Client:
    folder = root / name
    folder.mkdir()
    (folder / "driver.py").write_text(driver)
    (folder / "client.json").write_text(json.dumps({
        "name": name, "language": "Python", "client": f"{name} 0.0.1",
        "install": install or [], "driver": ["{python}", "driver.py"], "timeout_s": timeout_s}))
    return catalogue.load_client(folder)


def test_results_missing_lines_and_a_crash(tmp_path: Path) -> None:
    client = make_client(tmp_path, "crashy", DRIVER_PRINTS_AND_CRASHES)
    wanted = ["metadata", "topics-admin", "produce-consume", "delete-records"]
    (row,) = RUN.run_matrix([client], wanted, "127.0.0.1:1", "rid", tmp_path, False)
    got = {s: (r.status, r.reason) for s, r in row.results.items()}
    assert got["metadata"] == ("pass", "")
    assert got["topics-admin"] == ("n/a", "no admin API")
    assert got["produce-consume"] == ("fail", "Mismatch: offsets")
    status, reason = got["delete-records"]
    assert status == "fail"
    assert reason.startswith("driver printed no result; driver crashed (exit code 3)")
    assert "Traceback: boom" in reason


def test_a_hanging_driver_is_killed_at_its_timeout(tmp_path: Path) -> None:
    client = make_client(tmp_path, "hangs", DRIVER_HANGS, timeout_s=1.5)
    (row,) = RUN.run_matrix([client], ["metadata", "delete-records"], "127.0.0.1:1", "rid",
                            tmp_path, False)
    assert row.results["metadata"].status == "pass"
    assert row.results["delete-records"].status == "fail"
    assert "driver timed out after 2 s" in row.results["delete-records"].reason


def test_a_driver_is_stopped_when_the_broker_dies(tmp_path: Path) -> None:
    client = make_client(tmp_path, "orphan", DRIVER_HANGS, timeout_s=60)
    results = RUN.execute.run_driver(client, "127.0.0.1:1", "rid", ["metadata", "transactions"],
                                     tmp_path, "main", broker_alive=lambda: False)
    assert results["transactions"].status == "fail"  # never printed: the driver was stopped
    assert "the broker exited during the run" in results["transactions"].reason
    rows = RUN.run_matrix([client], ["metadata"], "127.0.0.1:1", "rid", tmp_path, False,
                          broker_alive=lambda: False)
    assert rows[0].results["metadata"].reason == "not run: the broker had exited"


def test_a_failed_install_makes_the_row_not_installed(tmp_path: Path) -> None:
    fail = [sys.executable, "-c", "print('resolving'); print('no such package'); exit(1)"]
    client = make_client(tmp_path, "broken", DRIVER_HANGS, install=[fail])
    scenarios = ["metadata", "transactions"]
    rows = RUN.run_matrix([client], scenarios, "127.0.0.1:1", "rid", tmp_path, False)
    assert not rows[0].installed
    assert "exited with code 1" in rows[0].install_error
    assert "no such package" in rows[0].install_error
    info = report.RunInfo("today", "0.1.0", "abc", "127.0.0.1:1", "rid",
                          broker.BrokerHealth(external=True), scenarios)
    md = report.to_markdown(rows, info)
    assert "| broken (not installed) |" in md
    assert "0 ✅ pass, 2 ❌ fail, 0 ➖ n/a" in md
    assert md.count("[^1]") == 3  # both cells share the one footnote, then the note itself
    cells = report.to_json(rows, info)["clients"][0]["results"]  # type: ignore[index]
    assert {c["status"] for c in cells.values()} == {"fail"}


def test_a_pass_with_a_note_gets_a_footnote(tmp_path: Path) -> None:
    row = report.Row(make_client(tmp_path, "noted", DRIVER_HANGS))
    row.results = {"metadata": RUN.Result("pass"),
                   "produce-consume": RUN.Result("pass", "cannot send null/null"),
                   "transactions": RUN.Result("fail", "a | b\nc")}
    info = report.RunInfo("today", "0.1.0", "abc", "x:1", "rid",
                          broker.BrokerHealth(external=True), list(row.results))
    md = report.to_markdown([row], info)
    assert "| ✅ | ✅[^1] | ❌[^2] |" in md
    assert "[^1]: passed, with a note: cannot send null/null" in md
    assert "[^2]: a \\| b ⏎ c" in md  # one line, the table's pipe escaped


def test_consume_codec_reads_the_previous_writer_in_a_ring() -> None:
    order = ["a", "b", "c"]
    wrote = {"a": {"gzip", "lz4"}, "b": {"gzip"}, "c": {"gzip"}}
    assert catalogue.pick_writer("a", "gzip", order, wrote) == "c"  # the first reads the last
    assert catalogue.pick_writer("b", "gzip", order, wrote) == "a"
    assert catalogue.pick_writer("c", "lz4", order, wrote) == "a"  # b did not write lz4
    assert catalogue.pick_writer("a", "lz4", order, wrote) == "a"  # only itself did
    assert catalogue.pick_writer("a", "zstd", order, wrote) is None


def test_scenario_selection() -> None:
    assert catalogue.select_scenarios(["produce-codec-*"]) == [
        f"produce-codec-{c}" for c in catalogue.CODECS]
    assert catalogue.select_scenarios(["consume-codec-lz4", "metadata"]) == [
        "metadata", "produce-codec-lz4", "consume-codec-lz4"]
    assert len(catalogue.select_scenarios(None)) == 19
    with pytest.raises(ValueError, match="no scenario matches"):
        catalogue.select_scenarios(["metdata"])


def test_tracebacks_in_a_broker_log_including_exception_groups() -> None:
    log = "\n".join([
        "2026 INFO odradek.server started",
        "2026 ERROR odradek.connection handler failed",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in f',
        "ValueError: bad",
        "2026 INFO odradek.server logs closed cleanly",
        "  + Exception Group Traceback (most recent call last):",
        "  |   File \"cli.py\", line 3, in main",
        "  | ExceptionGroup: Exceptions from Trio nursery (1 sub-exception)",
        "  +-+---------------- 1 ----------------",
        "    | BrokenPipeError: [Errno 32] Broken pipe",
        "    +------------------------------------",
        "2026 INFO later",
    ])
    found = broker.tracebacks(log)
    assert len(found) == 2
    assert found[0].splitlines()[0].endswith("handler failed")
    assert found[0].splitlines()[-1] == "ValueError: bad"
    assert "BrokenPipeError" in found[1] and "later" not in found[1]
    assert broker.tracebacks("2026 INFO all good\n") == []
