"""The three suites: where they live, how they are fetched, configured and run.

Each `Suite` names its folder (`compat/suites/<name>/`, holding `fetch.sh`, `allowlist.txt`
and `FINDINGS.md`; the fetched sources live in its git-ignored `work/`), the broker settings
its own harness gives the brokers it starts (so the suite meets the broker it was written
for), and `command(bootstrap, excluded, out_dir)`: the command, working directory and
environment that run it against `bootstrap`, writing its result file into `out_dir`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import results
from .results import Outcome

HERE = Path(__file__).resolve().parents[1]  # compat/suites


@dataclass
class Invocation:
    """What to run. Its stdout goes to `stdout`, and its stderr to the suite's log or, with
    `merge_stderr`, to `stdout` too."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    result_file: Path
    stdout: Path
    merge_stderr: bool = False


@dataclass
class Suite:
    name: str
    title: str
    broker_settings: dict[str, str]
    command: Callable[[str, list[str], Path], Invocation]
    read: Callable[[Path], dict[str, Outcome]]
    timeout_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return HERE / self.name

    @property
    def work(self) -> Path:
        return self.folder / "work"


# -- kafka-python ---------------------------------------------------------------------------
KAFKA_PYTHON = "3.0.12"
# The newest broker version kafka-python 3.0.12 has API tables for; it only gates tests.
KAFKA_PYTHON_BROKER_VERSION = "4.3.0"


def _kafka_python(bootstrap: str, excluded: list[str], out: Path) -> Invocation:
    work = HERE / "kafka-python" / "work"
    xml = out / "kafka-python.xml"
    argv = [str(work / ".venv" / "bin" / "python"), "-m", "pytest", "test/integration",
            "-p", "no:cacheprovider", "-q", "-o", "log_level=WARNING",
            "-o", "junit_family=xunit1", f"--junitxml={xml}",
            # the sdist's addopts use --timeout-method=thread, which ends the whole run on
            # the first timeout; signal fails just that test
            "--timeout=120", "--timeout-method=signal"]
    for pattern in excluded:
        argv += ["--deselect", pattern]
    env = {"KAFKA_URI": f"kafka://{bootstrap}", "KAFKA_VERSION": KAFKA_PYTHON_BROKER_VERSION,
           "KAFKA_ROOT": str(work / "kafka-root")}
    return Invocation(argv, work / f"kafka_python-{KAFKA_PYTHON}", env, xml,
                      out / "kafka-python.out")


# -- librdkafka -----------------------------------------------------------------------------
LIBRDKAFKA = "2.0.2"


def _librdkafka(bootstrap: str, excluded: list[str], out: Path) -> Invocation:
    work = HERE / "librdkafka" / "work"
    src = work / f"librdkafka-{LIBRDKAFKA}"
    conf = out / "librdkafka-test.conf"
    # The suite's timeouts are tuned for a JVM cluster on a fast machine; two shared cores
    # get its own knob for slow machines.
    conf.write_text(f"metadata.broker.list={bootstrap}\ntest.timeout.multiplier=3\n")
    tests = src / "tests"
    for old in tests.glob("test_report_*.json"):  # test-runner writes it into its cwd
        old.unlink()
    env = {"RDKAFKA_TEST_CONF": str(conf), "TEST_KAFKA_VERSION": "4.4.0",
           "KAFKA_PATH": str(work / "kafka"), "BROKERS": bootstrap,
           "LD_LIBRARY_PATH": f"{src / 'src'}:{src / 'src-cpp'}"}
    if excluded:
        env["TESTS_SKIP"] = ",".join(excluded)
    # -L: not the broker-less local tests; -Q -E: the suite's `make quick` (quick mode, no
    # socket-emulation tests); -r: the JSON report; -p2: two tests at a time (two cores).
    argv = ["./test-runner", "-L", "-Q", "-E", "-r", "-p2"]
    output = out / "librdkafka.out"
    return Invocation(argv, tests, env, output, output, merge_stderr=True)


def _read_librdkafka(output: Path) -> dict[str, Outcome]:
    """The report test-runner wrote into tests/, with failure messages from its output."""
    tests = HERE / "librdkafka" / "work" / f"librdkafka-{LIBRDKAFKA}" / "tests"
    reports = sorted(tests.glob("test_report_*.json"), key=os.path.getmtime)
    if not reports:
        raise FileNotFoundError(f"no test_report_*.json in {tests}")
    return results.read_librdkafka(reports[-1], output.read_text(errors="replace"))


# -- franz-go -------------------------------------------------------------------------------
FRANZ_GO = "v1.22.3"


def _franz_go(bootstrap: str, excluded: list[str], out: Path) -> Invocation:
    work = HERE / "franz-go" / "work"
    log = out / "franz-go.json"
    argv = ["go", "tool", "test2json", "-t", "-p", "kgo", str(work / "kgo.test"),
            "-test.v=test2json", "-test.count=1", "-test.timeout=20m"]
    exact = [p for p in excluded if not any(c in p for c in "*?[")]
    if exact:
        argv.append("-test.skip=^(" + "|".join(re.escape(p) for p in exact) + ")$")
    env = {"KGO_SEEDS": bootstrap, "KGO_TEST_RF": "1",
           # 500,000 records by default: far too many for two shared cores
           "KGO_TEST_RECORDS": "10000"}
    return Invocation(argv, work / "franz-go" / "pkg" / "kgo", env, log, log)


SUITES: dict[str, Suite] = {
    "kafka-python": Suite(
        name="kafka-python",
        title=f"kafka-python {KAFKA_PYTHON} `test/integration` (PyPI sdist)",
        # servers/resources/default/kafka.properties of kafka-python's harness: broker id 0
        # (tests address it by id), 4 partitions, short sessions allowed, no join delay
        broker_settings={"node.id": "0", "num.partitions": "4",
                         "group.initial.rebalance.delay.ms": "0",
                         "group.min.session.timeout.ms": "1000",
                         "offsets.topic.num.partitions": "2",
                         "offsets.commit.timeout.ms": "500"},
        command=_kafka_python, read=results.read_junit, timeout_s=1200),
    "librdkafka": Suite(
        name="librdkafka",
        title=f"librdkafka {LIBRDKAFKA} `tests/` (Debian source package {LIBRDKAFKA}-1), "
              "quick mode, broker tests",
        # tests/scenarios/default.json of the suite's cluster harness
        broker_settings={"num.partitions": "4", "auto.create.topics.enable": "true"},
        command=_librdkafka, read=_read_librdkafka, timeout_s=1800),
    "franz-go": Suite(
        name="franz-go",
        title=f"franz-go {FRANZ_GO} `pkg/kgo` tests (Go module proxy)",
        broker_settings={},
        command=_franz_go, read=results.read_go_json, timeout_s=1500),
}
