"""The broker a suite runs against: a fresh Odradek, or Apache Kafka 4.4 for comparison.

Odradek is started by compat/runner/broker.py's `OdradekProcess` (free port, temporary data
dir, `--override` per setting, waits for an ApiVersions answer) and stopped with SIGTERM;
its health (exit code, tracebacks in its log) is part of the suite's result. Kafka is
compat/apache-kafka's `ReferenceKafka` (single-node KRaft). A suite's broker settings (what
its own harness configures its brokers with) are applied to either; on Kafka a `node.id`
setting also moves the controller quorum voter to that id.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

COMPAT = Path(__file__).resolve().parents[2]
REPO = COMPAT.parent
for folder in (COMPAT, COMPAT / "apache-kafka"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from runner.broker import OdradekProcess, odradek_command  # noqa: E402


@dataclass
class BrokerRun:
    """The broker a suite ran against, and how it ended."""

    kind: str  # odradek | kafka
    bootstrap: str = ""
    healthy: bool = True
    health: str = ""
    tracebacks: list[str] = field(default_factory=list)
    log_path: str = ""
    alive: bool = True


@contextmanager
def odradek(settings: Mapping[str, str], workdir: Path) -> Iterator[BrokerRun]:
    overrides = [f"{key}={value}" for key, value in settings.items()]
    proc = OdradekProcess(odradek_command(), workdir, REPO, overrides)
    proc.start()
    run = BrokerRun("odradek", proc.bootstrap, log_path=str(proc.log_path))
    try:
        yield run
    finally:
        run.alive = proc.alive()
        health = proc.stop()
        run.healthy, run.health, run.tracebacks = health.ok, health.describe(), health.tracebacks


@contextmanager
def kafka(settings: Mapping[str, str], workdir: Path) -> Iterator[BrokerRun]:
    import apache_kafka

    apache_kafka.ensure_fetched()
    ref = apache_kafka.ReferenceKafka(directory=workdir / "kafka", overrides=settings)
    if "node.id" in settings:
        ref.overrides["controller.quorum.voters"] = (
            f"{settings['node.id']}@{ref.host}:{ref.controller_port}")
    ref.start()
    run = BrokerRun("kafka", ref.bootstrap, log_path=str(ref.log_file))
    try:
        yield run
    finally:
        run.alive = ref.process is not None and ref.process.poll() is None
        ref.stop()
        run.health = "Apache Kafka 4.4 (reference)"


def odradek_version() -> str:
    """The version in pyproject.toml, with the git commit when there is one."""
    import subprocess
    import tomllib

    try:
        with open(REPO / "pyproject.toml", "rb") as f:
            version = str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        version = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"{version} (commit {commit})" if commit else version
