"""Kafka's VerifiableProducer and VerifiableConsumer against a broker restarted mid-run.

    python3 compat/kafka-verifiable/run.py [--broker odradek|kafka] [--messages 10000]
        [--throughput 1000] [--partitions 3] [--consumers 2] [--restarts sigterm,sigkill]
        [--group-protocol classic|consumer] [--keep]

How this works
--------------
The script starts its own broker (a fresh Odradek, `odradek serve` on a free port with a
temporary data directory; or, with `--broker kafka`, Apache Kafka 4.4 from
compat/apache-kafka for comparison), since it must restart it. Then one round per restart
kind (`--restarts`, by default SIGTERM then SIGKILL), each on its own topic:

1. create the topic (`kafka-topics`, `--partitions`);
2. start `--consumers` VerifiableConsumers in one group (`--verbose`: one `record_data` event
   per record; offsets committed by the tool after each batch; reset policy earliest);
3. start a VerifiableProducer (`--acks -1` = acks=all, `--max-messages`, `--throughput`),
   whose `producer_send_success` events are the acknowledged records;
4. once half the records are acknowledged, send the broker the round's signal, wait for it to
   exit, and start it again on the same port and data directory;
5. wait for the producer to finish, then for the consumers to have read every acknowledged
   record (or for `--drain-timeout`), and stop them with SIGTERM.

From the events of every tool (JSON lines on their stdout) a round counts: `acked` (distinct
acknowledged values), `send_errors`, `consumed` (distinct values read), `lost` (acknowledged
and never read), `duplicated` (extra deliveries of a value, expected after a restart since
the group resumes from its last commit) and `unacked_consumed` (read but never acknowledged,
possible when an acknowledgement was lost with the connection). A round passes when nothing
acknowledged is lost, something was acknowledged, and the broker came back. The script prints
one JSON summary on stdout and exits 1 when a round did not pass (2 on a setup failure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "apache-kafka"))
sys.path.insert(0, str(HERE.parent))

import apache_kafka  # noqa: E402
from runner.broker import odradek_command  # noqa: E402

LOG4J2 = """\
status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
"""

START_TIMEOUT_S = 90.0
STOP_GRACE_S = 60.0


def log(message: str) -> None:
    print(f"[verifiable] {message}", file=sys.stderr, flush=True)


# -- brokers -------------------------------------------------------------------------------


class Broker(Protocol):
    bootstrap: str
    #: Exit codes of a clean stop on SIGTERM.
    clean_exits: frozenset[int]

    def start(self) -> None: ...

    def stop(self, sig: int) -> int | None: ...


def signal_and_wait(proc: subprocess.Popen[bytes] | None, sig: int) -> int | None:
    """Send `sig` and return the exit code; None when not running or killed after the grace."""
    if proc is None:
        return None
    proc.send_signal(sig)
    try:
        return proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


class OdradekBroker:
    """`odradek serve` on a fixed port and data directory, restartable."""

    clean_exits = frozenset({0})

    def __init__(self, workdir: Path, command: list[str]) -> None:
        self.port = apache_kafka.free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        listener = f"PLAINTEXT://{self.bootstrap}"
        log_file = open(self.workdir / f"broker-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [*self.command, "--override", f"log.dirs={self.workdir / 'data'}",
             "--override", f"listeners={listener}",
             "--override", f"advertised.listeners={listener}"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log_file.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"odradek exited with {self.process.returncode} on start; "
                                   f"see {self.workdir}/broker-{self.starts}.log")
            if apache_kafka.probe("127.0.0.1", self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"odradek did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self, sig: int) -> int | None:
        proc, self.process = self.process, None
        return signal_and_wait(proc, sig)


class KafkaBroker:
    """Apache Kafka 4.4 (compat/apache-kafka), restartable on the same port and directory.

    The JVM exits 143 (128 + SIGTERM) after a clean shutdown on SIGTERM.
    """

    clean_exits = frozenset({0, 128 + signal.SIGTERM})

    def __init__(self, workdir: Path) -> None:
        self.kafka = apache_kafka.ReferenceKafka(directory=workdir / "kafka")
        self.bootstrap = self.kafka.bootstrap

    def start(self) -> None:
        self.kafka.start()

    def stop(self, sig: int) -> int | None:
        proc: subprocess.Popen[bytes] | None = self.kafka.process
        self.kafka.process = None
        return signal_and_wait(proc, sig)


# -- the tools -----------------------------------------------------------------------------


def tool_command(workdir: Path, main: str, *args: str) -> list[str]:
    return [apache_kafka.java(), "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={workdir / 'log4j2.properties'}",
            "-cp", apache_kafka.classpath(), main, *args]


class EventTool:
    """A Verifiable* tool whose JSON events (one per stdout line) a thread collects."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sys.stderr,
                                        stdin=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self.lock:
                self.events.append(event)

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e.get("name") == name]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.thread.join(10)
        return self.process.returncode


# -- one round -----------------------------------------------------------------------------


@dataclass
class Round:
    restart: str
    topic: str
    acked: int = 0
    send_errors: int = 0
    consumed: int = 0
    lost: int = 0
    duplicated: int = 0
    unacked_consumed: int = 0
    restart_at_acked: int = 0
    broker_exit_code: int | None = None
    broker_down_s: float = 0.0
    commits_failed: int = 0
    send_error_kinds: dict[str, int] = field(default_factory=dict)
    lost_sample: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.acked > 0 and not self.problems

    def summary(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["passed"] = self.passed
        return out


def run_round(args: argparse.Namespace, broker: Broker, workdir: Path, restart: str,
              run_id: str) -> Round:
    sig = {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[restart]
    result = Round(restart=restart, topic=f"verifiable-{restart}-{run_id}")
    group = f"verifiable-{restart}-{run_id}"
    log(f"round {restart}: topic {result.topic}, {args.messages} records, "
        f"{args.consumers} consumer(s)")
    created = subprocess.run(
        tool_command(workdir, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server",
                     broker.bootstrap, "--create", "--topic", result.topic, "--partitions",
                     str(args.partitions)), capture_output=True, text=True, timeout=120)
    if created.returncode != 0:
        raise RuntimeError(f"kafka-topics --create failed: {created.stderr.strip()[-500:]}")

    consumers = [EventTool(f"consumer-{i}", tool_command(
        workdir, "org.apache.kafka.tools.VerifiableConsumer", "--bootstrap-server",
        broker.bootstrap, "--topic", result.topic, "--group-id", group, "--verbose",
        "--reset-policy", "earliest", "--group-protocol", args.group_protocol))
        for i in range(args.consumers)]
    extra: list[str] = []
    if args.producer_property:
        config = workdir / "producer.properties"
        config.write_text("".join(f"{kv}\n" for kv in args.producer_property))
        extra = ["--command-config", str(config)]
    producer = EventTool("producer", tool_command(
        workdir, "org.apache.kafka.tools.VerifiableProducer", "--bootstrap-server",
        broker.bootstrap, "--topic", result.topic, "--acks", "-1", "--max-messages",
        str(args.messages), "--throughput", str(args.throughput), *extra))
    try:
        deadline = time.monotonic() + args.messages / max(args.throughput, 1) + 120
        while len(producer.named("producer_send_success")) < args.messages // 2:
            if producer.process.poll() is not None or time.monotonic() > deadline:
                result.problems.append("the producer stopped before half the records were "
                                       "acknowledged")
                break
            time.sleep(0.05)
        result.restart_at_acked = len(producer.named("producer_send_success"))
        log(f"round {restart}: {result.restart_at_acked} acknowledged, restarting the broker")
        down = time.monotonic()
        result.broker_exit_code = broker.stop(sig)
        if restart == "sigterm" and result.broker_exit_code not in broker.clean_exits:
            result.problems.append(f"the broker exited {result.broker_exit_code} on SIGTERM")
        broker.start()
        result.broker_down_s = round(time.monotonic() - down, 1)
        log(f"round {restart}: broker back after {result.broker_down_s} s")

        try:
            producer.process.wait(max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            result.problems.append("the producer did not finish in time")
        producer.stop()
        acked = {e["value"] for e in producer.named("producer_send_success")}
        drain = time.monotonic() + args.drain_timeout
        while time.monotonic() < drain:
            if acked <= consumed_values(consumers).keys():
                break
            time.sleep(0.2)
    finally:
        producer.stop()
        for consumer in consumers:
            consumer.stop()

    acked = {e["value"] for e in producer.named("producer_send_success")}
    counts = consumed_values(consumers)
    result.acked = len(acked)
    errors = producer.named("producer_send_error")
    result.send_errors = len(errors)
    result.send_error_kinds = dict(Counter(str(e.get("exception")) for e in errors))
    result.consumed = len(counts)
    lost = acked - counts.keys()
    result.lost = len(lost)
    result.lost_sample = sorted(lost, key=lambda v: int(v) if v.isdigit() else 0)[:10]
    result.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    result.unacked_consumed = len(counts.keys() - acked)
    result.commits_failed = sum(1 for c in consumers for e in c.named("offsets_committed")
                                if not e.get("success", True))
    log(f"round {restart}: acked {result.acked}, consumed {result.consumed}, lost "
        f"{result.lost}, duplicated {result.duplicated}")
    return result


def consumed_values(consumers: list[EventTool]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for consumer in consumers:
        for event in consumer.named("record_data"):
            counts[str(event.get("value"))] += 1
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("odradek", "kafka"), default="odradek")
    parser.add_argument("--broker-cmd", help="command that serves Odradek (default: "
                        ".venv/bin/odradek serve); --override log.dirs/listeners are appended")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--throughput", type=int, default=1_000, help="records per second")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--restarts", default="sigterm,sigkill",
                        help="comma-separated rounds: sigterm, sigkill")
    parser.add_argument("--group-protocol", choices=("classic", "consumer"), default="classic")
    parser.add_argument("--drain-timeout", type=float, default=60.0,
                        help="seconds to wait for the consumers after the producer ends")
    parser.add_argument("--producer-property", action="append", default=[],
                        metavar="KEY=VALUE", help="extra producer config (the tool's own "
                        "defaults: acks from --acks, retries=0)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    restarts = [r.strip() for r in args.restarts.split(",") if r.strip()]
    if not restarts or any(r not in ("sigterm", "sigkill") for r in restarts):
        print("--restarts takes sigterm and/or sigkill", file=sys.stderr)
        return 2
    apache_kafka.ensure_fetched()
    workdir = Path(tempfile.mkdtemp(prefix="kafka-verifiable-"))
    (workdir / "log4j2.properties").write_text(LOG4J2)
    log(f"work directory {workdir}")
    run_id = os.urandom(4).hex()
    broker: Broker
    if args.broker == "kafka":
        broker = KafkaBroker(workdir)
    else:
        broker = OdradekBroker(workdir, args.broker_cmd.split() if args.broker_cmd
                               else odradek_command())
    rounds: list[Round] = []
    final_exit: int | None = None
    try:
        broker.start()
        for restart in restarts:
            rounds.append(run_round(args, broker, workdir, restart, run_id))
    except Exception as e:  # noqa: BLE001 - setup failures end the run with a summary
        log(f"setup failure: {type(e).__name__}: {e}")
        print(json.dumps({"broker": args.broker, "error": f"{type(e).__name__}: {e}",
                          "rounds": [r.summary() for r in rounds], "passed": False}))
        return 2
    finally:
        final_exit = broker.stop(signal.SIGTERM)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    passed = all(r.passed for r in rounds) and final_exit in broker.clean_exits
    print(json.dumps({
        "broker": args.broker,
        "messages": args.messages,
        "partitions": args.partitions,
        "consumers": args.consumers,
        "group_protocol": args.group_protocol,
        "acked": sum(r.acked for r in rounds),
        "consumed": sum(r.consumed for r in rounds),
        "lost": sum(r.lost for r in rounds),
        "duplicated": sum(r.duplicated for r in rounds),
        "final_broker_exit_code": final_exit,
        "rounds": [r.summary() for r in rounds],
        "passed": passed,
    }, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
