"""The compatibility matrix's Python and kcat rows, run as `make compat` runs them.

`compat/run.py` starts a fresh Odradek (`odradek serve` on a free port), installs the four
clients as needed (each Python client into its own venv from PyPI, kcat from Debian's
package; both idempotent, well under a second when already there), runs every scenario of
compat/SCENARIOS.md through the clients' drivers, stops the broker with SIGTERM and writes
report.json, which this test reads:

- every cell passes, except those in `EXPECTED_NA` (the client has no API for the scenario;
  they must stay n/a) and those in `EXPECTED_FAILURES` (a broker feature not there yet; they
  must fail, so the list is updated the day they start to pass);
- the broker exited 0 with no traceback in its log.

A pass that carries a note (a part of the scenario the client cannot express) is a pass.
Runs in about a minute on two cores with the clients installed (four drivers at once).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(900)  # the first run installs the clients from PyPI

REPO = Path(__file__).resolve().parents[2]
CLIENTS = ("kafka-python", "confluent-kafka", "aiokafka", "kcat")

# (client, scenario) -> why the client cannot do it. These must be reported n/a.
EXPECTED_NA: dict[tuple[str, str], str] = {
    ("kcat", "topics-admin"): "kcat has no admin API",
    ("kcat", "consumer-group"): "kcat cannot create a topic with 6 partitions",
    ("kcat", "delete-records"): "kcat has no DeleteRecords API",
}

# (client, scenario) -> the broker work that will make it pass. These must be reported as
# failures: when one starts to pass, this test fails until its entry is removed. Empty: the
# transactions of issue 8 pass with every client here.
EXPECTED_FAILURES: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("compat-report")
    proc = subprocess.run(
        [sys.executable, str(REPO / "compat" / "run.py"), "--clients", ",".join(CLIENTS),
         "--jobs", str(len(CLIENTS)), "--report-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    sys.stderr.write(proc.stderr)
    assert (out / "report.json").exists(), f"no report; runner stderr:\n{proc.stderr[-3000:]}"
    data = json.loads((out / "report.json").read_text())
    data["runner_exit_code"] = proc.returncode
    return data


def test_the_python_and_kcat_rows_pass(report: dict) -> None:
    rows = {row["name"]: row for row in report["clients"]}
    assert sorted(rows) == sorted(CLIENTS)
    for name in CLIENTS:
        assert rows[name]["installed"], f"{name} not installed: {rows[name]['install_error']}"
    wrong = []
    for name in CLIENTS:
        for scenario, cell in rows[name]["results"].items():
            key = (name, scenario)
            want = ("n/a" if key in EXPECTED_NA else "fail" if key in EXPECTED_FAILURES
                    else "pass")
            if cell["status"] != want:
                wrong.append(f"{name} {scenario}: {cell['status']} (want {want}): "
                             f"{cell['reason'][:600]}")
    died = report["broker"]["died_early"] or report["broker"]["exit_code"] not in (0, None)
    cause = ("\n\nthe broker exited during the run; its last traceback:\n"
             + "".join(report["broker"]["tracebacks"][-1:])[-2000:]) if died else ""
    assert not wrong, "\n".join(wrong) + cause


def test_every_scenario_ran(report: dict) -> None:
    for row in report["clients"]:
        assert len(row["results"]) == len(report["scenarios"]) == 19
    for name, scenario in (*EXPECTED_NA, *EXPECTED_FAILURES):
        assert scenario in report["scenarios"] and name in CLIENTS


def test_consume_codec_reads_another_clients_writes(report: dict) -> None:
    writers = {row["name"]: {s: c.get("writer") for s, c in row["results"].items()
                             if s.startswith("consume-codec-")}
               for row in report["clients"]}
    # Each row reads the row above it (the first reads the last): a ring over four clients.
    assert writers["kafka-python"] == dict.fromkeys(writers["kafka-python"], "kcat")
    assert writers["confluent-kafka"] == dict.fromkeys(writers["confluent-kafka"],
                                                       "kafka-python")
    assert writers["kcat"] == dict.fromkeys(writers["kcat"], "aiokafka")


def test_the_broker_stopped_cleanly(report: dict) -> None:
    broker = report["broker"]
    assert broker["exit_code"] == 0 and not broker["killed"] and not broker["died_early"], broker
    assert broker["tracebacks"] == [], "\n\n".join(broker["tracebacks"])
    assert report["runner_exit_code"] == 0
