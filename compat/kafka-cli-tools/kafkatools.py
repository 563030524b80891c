"""Run Apache Kafka's command-line tools from the jars of compat/apache-kafka, and parse them.

How this works
--------------
Each tool is its `bin/kafka-*.sh` script's main class, started as `java -cp lib/* <class>` with
the jars that `compat/apache-kafka/fetch.sh` copied from Maven Central (no distribution
tarball, so no shell scripts). Log4j writes the tools' log lines to stderr (`log4j2.properties`),
so stdout is only what the tool prints for the user, which the parsers below read.

Every tool is its own JVM. To keep the start-up cost down, the JVM runs with the C1 compiler
only and the serial collector, and with an application class-data-sharing archive
(`.cache/tools-<java version>.jsa`) that the first tool run writes on exit
(`-XX:ArchiveClassesAtExit`, to a temporary name renamed into place once that JVM has exited
normally) and later runs map (`-XX:SharedArchiveFile`): about half the start-up time. An
archive that does not match the JVM or the jars is ignored by the JVM (`-Xshare:auto`), so
it is only ever an optimisation.

Every run is bounded: `Budget` holds the deadline of the scenario being run, and a tool that
outlives it is killed and raises `subprocess.TimeoutExpired`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIB = HERE.parent / "apache-kafka" / "lib"
CACHE = HERE / ".cache"

#: bin/kafka-<name>.sh -> its main class in Kafka 4.4.
MAIN_CLASSES = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
}

#: What the console consumer prints per record (see `parse_records`).
RECORD_FORMAT = [
    "--formatter-property", "print.timestamp=true",
    "--formatter-property", "print.partition=true",
    "--formatter-property", "print.offset=true",
    "--formatter-property", "print.headers=true",
    "--formatter-property", "print.key=true",
    "--formatter-property", "null.literal=<null>",
]
NULL = "<null>"


class Mismatch(Exception):
    """The broker's behaviour differs from what the scenario expects."""


class ToolError(Exception):
    """A tool exited with a non-zero status."""


class Budget:
    """The deadline of one scenario; tools get what remains of it, at most `per_call`."""

    def __init__(self, seconds: float, per_call: float = 60.0) -> None:
        self.deadline = time.monotonic() + seconds
        self.per_call = per_call
        self.step = "starting"

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"scenario budget exhausted while {self.step}")
        return min(left, self.per_call)


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def _java_version() -> str:
    out = subprocess.run([java(), "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "([^"]+)"', out.stderr)
    return match.group(1) if match else "unknown"


@dataclass
class Tools:
    """Runs the tools against one bootstrap address."""

    bootstrap: str
    budget: Budget = field(default_factory=lambda: Budget(60.0))
    _archive: Path | None = None

    def command(self, tool: str, args: Sequence[str], *, may_archive: bool = False) -> list[str]:
        """The full java command line of one tool run.

        With `may_archive` and no archive yet, the run writes one to a temporary file that
        `run` renames into place once the JVM has exited (so a concurrent driver never maps a
        half-written archive).
        """
        opts = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
                "-Xlog:cds=off", "-Xlog:cds+dynamic=off",
                f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}"]
        archive = self.archive()
        if archive.exists():
            opts.append(f"-XX:SharedArchiveFile={archive}")
        elif may_archive:
            CACHE.mkdir(exist_ok=True)
            opts.append(f"-XX:ArchiveClassesAtExit={self._pending_archive()}")
        return [java(), *opts, "-cp", f"{LIB}/*", MAIN_CLASSES[tool], *args]

    def archive(self) -> Path:
        if self._archive is None:
            self._archive = CACHE / f"tools-{_java_version()}.jsa"
        return self._archive

    def _pending_archive(self) -> Path:
        return self.archive().with_suffix(f".{os.getpid()}.tmp")

    def run(self, tool: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run a tool to completion and return its stdout; stderr goes to ours."""
        cmd = self.command(tool, [*self._connection(tool), *args], may_archive=True)
        pending = self._pending_archive()
        try:
            proc = subprocess.run(cmd, input=stdin.encode() if stdin is not None else None,
                                  capture_output=True, timeout=self.budget.remaining())
        except BaseException:
            pending.unlink(missing_ok=True)  # a killed JVM may have left half an archive
            raise
        if pending.exists():
            os.replace(pending, self.archive())
        err = proc.stderr.decode(errors="replace")
        sys.stderr.write(err)
        if check and proc.returncode != 0:
            tail = " | ".join(line for line in err.strip().splitlines()[-3:])
            raise ToolError(f"{tool} {' '.join(args)[:120]} exited {proc.returncode}: {tail}")
        return proc.stdout.decode(errors="replace")

    def start(self, tool: str, *args: str, stdout: Path) -> subprocess.Popen[bytes]:
        """Start a long-running tool (a console consumer) with its stdout in a file."""
        cmd = self.command(tool, [*self._connection(tool), *args])
        with open(stdout, "wb") as out:
            return subprocess.Popen(cmd, stdout=out, stderr=sys.stderr)

    def _connection(self, tool: str) -> list[str]:
        return ["--bootstrap-server", self.bootstrap]


# -- parsers ---------------------------------------------------------------------------------


@dataclass
class Record:
    """One record as the console consumer printed it (`RECORD_FORMAT`)."""

    timestamp_type: str
    timestamp: int
    partition: int
    offset: int
    headers: list[tuple[str, str]] | None  # None: no headers at all
    key: str
    value: str


def parse_records(stdout: str) -> list[Record]:
    """Parse `timestampType:ts  Partition:p  Offset:o  headers  key  value` lines (tab-separated).

    Headers print as `k:v,k:v` or `NO_HEADERS`; a null key, value or header value prints as
    `<null>`. Values and keys must not hold tabs or newlines (the scenarios' do not).
    """
    out = []
    for line in stdout.split("\n"):
        if not line:
            continue
        parts = line.split("\t", 5)
        if len(parts) != 6:
            raise Mismatch(f"unexpected console consumer line {line[:200]!r}")
        ts_type, ts = parts[0].split(":", 1)
        headers: list[tuple[str, str]] | None = None
        if parts[3] != "NO_HEADERS":
            headers = []
            for pair in parts[3].split(","):
                k, _, v = pair.partition(":")
                headers.append((k, v))
        out.append(Record(ts_type, int(ts), int(parts[1].removeprefix("Partition:")),
                          int(parts[2].removeprefix("Offset:")), headers, parts[4], parts[5]))
    return out


def parse_offsets(stdout: str) -> dict[int, int]:
    """`kafka-get-offsets` lines `topic:partition:offset` -> {partition: offset}.

    A partition for which Kafka has no offset (a timestamp after the last record) has no line.
    """
    out = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"(.+):(\d+):(-?\d+)", line.strip())
        if match:
            out[int(match.group(2))] = int(match.group(3))
    return out


def parse_table(stdout: str, first_column: str) -> list[dict[str, str]]:
    """Whitespace-separated tables of `kafka-consumer-groups --describe` as dicts by header.

    Only rows after a header line starting with `first_column` are read; "-" cells stay "-".
    """
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in stdout.splitlines():
        cells = line.split()
        if not cells:
            header = None
            continue
        if cells[0] == first_column:
            header = cells
            continue
        if header is not None and len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def parse_assignment(cell: str) -> set[tuple[str, int]]:
    """`topic:0,1,2;other:3` (kafka-consumer-groups' CURRENT-ASSIGNMENT) -> {(topic, partition)}.

    `-` (no partitions) gives the empty set.
    """
    out: set[tuple[str, int]] = set()
    if cell == "-":
        return out
    for part in cell.split(";"):
        topic, _, partitions = part.rpartition(":")
        for p in partitions.split(","):
            if p.strip():
                out.add((topic, int(p)))
    return out


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (`Utils.murmur2`) as an unsigned 32-bit int.

    The default partitioner puts a keyed record in `(murmur2(key) & 0x7fffffff) % partitions`;
    the driver uses it to pick keys that land in given partitions of the console producer.
    """
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
