"""Apache Kafka as a reference broker: fetch, format, start, probe, stop, dump segments.

How this works
--------------
``fetch.sh`` copies the Kafka jars from Maven Central into ``lib/`` (once). ``ReferenceKafka``
writes a single-node KRaft config (broker and controller in one process, static quorum of one
voter) into a fresh directory, formats it with ``kafka.tools.StorageTool`` and a random cluster
id, starts ``kafka.Kafka`` in its own process group and waits until the broker answers a raw
ApiVersions and lists itself in a raw Metadata response. ``stop()`` sends SIGTERM (a controlled
shutdown), then SIGKILL after a grace period. ``dump_log_segments()`` runs
``org.apache.kafka.tools.DumpLogSegments`` on segment or index files, ours or Kafka's.

Standard library only, so pytest, benchmarks and scripts can all import it::

    sys.path.insert(0, "compat/apache-kafka")
    from apache_kafka import ReferenceKafka

    with ReferenceKafka(advertised="127.0.0.1:19092") as kafka:
        kafka.bootstrap          # "127.0.0.1:<port>", the real listener
        kafka.data_dir           # log.dirs (topic-partition folders, segments)

Command line (``python compat/apache-kafka/apache_kafka.py --help``)::

    apache_kafka.py fetch
    apache_kafka.py serve --port 9092 [--advertise HOST:PORT] [--dir DIR] [--set key=value]...
    apache_kafka.py dump FILE... [-- extra DumpLogSegments args]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

HERE = Path(__file__).resolve().parent
LIB = HERE / "lib"
KAFKA_VERSION = "4.4.0"  # keep in step with pom.xml

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
"""


class KafkaError(RuntimeError):
    """The reference Kafka could not be fetched, formatted or started."""


def ensure_fetched() -> None:
    """Copy the jars into lib/ with Maven unless they are already there."""
    if not (LIB / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        subprocess.run(["bash", str(HERE / "fetch.sh")], check=True)


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise KafkaError("no java on PATH and no JAVA_HOME: install a JDK 17+")
    return found


def classpath() -> str:
    return str(LIB / "*")


def random_cluster_id() -> str:
    """A Kafka ``Uuid`` in its string form: url-safe base64 of 16 bytes, no padding.

    Like ``Uuid.randomUuid()`` it never starts with ``-`` (the tools would read it as a flag).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    """Send one non-flexible request (header v1) and return the response after its size."""
    client = b"odradek-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client)) + client
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", _read_exact(sock, 4))[0]
    return _read_exact(sock, size)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed")
        out += chunk
    return bytes(out)


def probe(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers ApiVersions v0 and Metadata v1 lists at least one broker."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            resp = _request(sock, 18, 0, 1, b"")
            if struct.unpack_from(">ih", resp)[1] != 0:
                return False
            # Metadata v1 with a null topic array (= no topics): brokers come first.
            resp = _request(sock, 3, 1, 2, struct.pack(">i", 0))
            brokers = struct.unpack_from(">i", resp, 4)[0]
            return bool(brokers >= 1)
    except (OSError, struct.error):
        return False


class ReferenceKafka:
    """One single-node KRaft Apache Kafka process; a context manager.

    ``advertised`` is what the broker puts in Metadata (``host:port``); by default its own
    listener. Point it at a proxy to make clients reconnect through the proxy. ``overrides``
    are extra ``server.properties`` lines. ``directory`` defaults to a fresh temporary folder
    that ``stop()`` removes (a given folder is kept).
    """

    def __init__(
        self,
        port: int | None = None,
        advertised: str | None = None,
        directory: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        heap: str = "768m",
        start_timeout: float = 90.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.controller_port = free_port(host)
        self.advertised = advertised or f"{host}:{self.port}"
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="apache-kafka-"))
        self.overrides = dict(overrides or {})
        self.heap = heap
        self.start_timeout = start_timeout
        self.cluster_id = random_cluster_id()
        self.process: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------
    def properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.advertised}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        props.update(self.overrides)
        return props

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            java(),
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            classpath(),
            main,
            *args,
        ]

    def format(self) -> None:
        ensure_fetched()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            "".join(f"{k}={v}\n" for k, v in self.properties().items())
        )
        (self.directory / "log4j2.properties").write_text(LOG4J2.format(log=self.log_file))
        result = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(self.config_file),
                "--cluster-id",
                self.cluster_id,
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise KafkaError(f"StorageTool format failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> ReferenceKafka:
        """Format (if needed), start, and wait until the broker answers."""
        if self.process is not None:
            return self
        self.format()
        out = open(self.directory / "stdout.log", "ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.config_file)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KafkaError(f"Kafka exited with {self.process.returncode}:\n{self._tail()}")
            if probe(self.host, self.port):
                return self
            time.sleep(0.25)
        self.stop()
        raise KafkaError(f"Kafka did not answer within {self.start_timeout}s:\n{self._tail()}")

    def stop(self, grace: float = 30.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _tail(self, lines: int = 40) -> str:
        text = ""
        for name in ("stdout.log", "server.log"):
            path = self.directory / name
            if path.exists():
                text += f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-lines:]) + "\n"
        return text

    def __enter__(self) -> ReferenceKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def dump_log_segments(
    files: Sequence[str | os.PathLike[str]],
    *extra: str,
    deep: bool = True,
    print_data: bool = True,
) -> str:
    """Run ``org.apache.kafka.tools.DumpLogSegments`` and return its output (raises on failure).

    ``files`` are ``.log``, ``.index``, ``.timeindex`` (or snapshot) files. By default it
    iterates records inside batches and prints keys/values (``--deep-iteration
    --print-data-log``); pass ``"--index-sanity-check"``, ``"--verify-index-only"`` etc. in
    ``extra``.
    """
    ensure_fetched()
    args = ["--files", ",".join(str(f) for f in files)]
    if deep:
        args.append("--deep-iteration")
    if print_data:
        args.append("--print-data-log")
    main = "org.apache.kafka.tools.DumpLogSegments"
    cmd = [java(), "-Xmx256m", "-cp", classpath(), main, *args, *extra]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise KafkaError(f"DumpLogSegments failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="copy the Kafka jars into lib/ (idempotent)")
    serve = sub.add_parser("serve", help="run a single-node KRaft Kafka until interrupted")
    serve.add_argument("--port", type=int, default=9092)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--advertise", help="HOST:PORT put in Metadata (default: the listener)")
    serve.add_argument("--dir", help="data folder to keep (default: a temporary one)")
    serve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    dump = sub.add_parser("dump", help="DumpLogSegments on segment/index files")
    dump.add_argument("files", nargs="+")
    dump.add_argument("--shallow", action="store_true", help="batches only, no records")
    args, extra = parser.parse_known_args(argv)

    if args.cmd == "fetch":
        ensure_fetched()
        return 0
    if args.cmd == "dump":
        print(dump_log_segments(args.files, *extra, deep=not args.shallow), end="")
        return 0
    overrides = dict(kv.split("=", 1) for kv in args.set)
    kafka = ReferenceKafka(
        port=args.port, host=args.host, advertised=args.advertise, directory=args.dir,
        overrides=overrides,
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        kafka.start()
        print(f"Apache Kafka {KAFKA_VERSION} on {kafka.bootstrap} (advertised {kafka.advertised}),"
              f" data in {kafka.data_dir}, log {kafka.log_file}", flush=True)
        while kafka.process is not None and kafka.process.poll() is None:
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        kafka.stop()


if __name__ == "__main__":
    sys.exit(main())
