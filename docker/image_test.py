"""End-to-end test of Odradek's container image (`make image-test`).

Not part of `make test`: it needs a container engine and builds an image. It uses docker
where a docker engine runs and podman otherwise (installing podman, and podman-compose for
the compose check, with apt-get as root when they are missing; see docker/image.py).

What it checks, each through a real client over the published port:
1. The image runs as the non-root user `odradek`; the HEALTHCHECK (a real ApiVersions
   request) passes.
2. `KAFKA_*` variables configure the broker (`KAFKA_NUM_PARTITIONS=3`) and
   `KAFKA_ADVERTISED_LISTENERS` is what Metadata gives clients (127.0.0.1:<random port>).
3. A one-shot container of the same image creates a topic (`create-topics`); confluent-kafka
   produces 300 keyed messages (idempotent, acks=all) and consumes them all back.
4. SIGTERM (`stop`) ends the broker in under 5 s with exit code 0 and "stopped cleanly".
5. After a restart of the container the data is all there (read with kafka-python), and a
   new message gets the next offset; a new container on the same named volume sees all of
   it and keeps the cluster id.
6. `compose.yaml`: the broker comes up with its named volume and the one-shot service
   creates its topic, which a client then sees.

    python docker/image_test.py [--tag odradek:latest] [--base IMAGE] [--no-build]
                                [--no-compose]

Waits are bounded polls for readiness, never timed assertions (except the 5 s stop budget,
which is the requirement under test).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import healthcheck  # noqa: E402
import image  # noqa: E402

STOP_BUDGET_S = 5.0
READY_WAIT_S = 60.0
CLIENT_WAIT_S = 60.0
MESSAGES = 300
TOPIC = "image-test"


class Failed(Exception):
    pass


def say(message: str) -> None:
    print(f"[image-test] {message}", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, probe: Callable[[], Any], limit_s: float = READY_WAIT_S) -> Any:
    """Poll `probe` until it returns a true value (bounded), and return that value."""
    deadline = time.monotonic() + limit_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise Failed(f"{what}: not within {limit_s:.0f} s (last error: {last})")


def wait_ready(port: int) -> None:
    wait_for(f"broker on 127.0.0.1:{port}", lambda: healthcheck.check("127.0.0.1", port, 2.0))


# ------------------------------------------------------------------------------ clients


def produce(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> dict[int, list[int]]:
    """Produce with confluent-kafka; returns partition -> offsets, in delivery order."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": int(CLIENT_WAIT_S * 1000)})
    offsets: dict[int, list[int]] = {}
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            offsets.setdefault(msg.partition(), []).append(msg.offset())

    for key, value in messages:
        producer.produce(TOPIC, value=value, key=key, on_delivery=delivered)
    remaining = producer.flush(CLIENT_WAIT_S)
    expect(remaining == 0 and not errors,
           f"produce: {remaining} undelivered, errors {errors[:3]}")
    return offsets


def consume_confluent(bootstrap: str, partitions: int, count: int
                      ) -> list[tuple[int, int, bytes, bytes]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "odradek-image-test",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    got: list[tuple[int, int, bytes, bytes]] = []
    try:
        consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + CLIENT_WAIT_S
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            expect(msg.error() is None, f"consume: {msg.error()}")
            got.append((msg.partition() or 0, msg.offset() or 0, msg.key() or b"",
                        msg.value() or b""))
    finally:
        consumer.close()
    return got


def consume_kafka_python(bootstrap: str, partitions: int, count: int
                         ) -> list[tuple[int, int, bytes, bytes]]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100,
                             request_timeout_ms=30_000)
    got: list[tuple[int, int, bytes, bytes]] = []
    try:
        tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + CLIENT_WAIT_S
        while len(got) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got += [(r.partition, r.offset, r.key, r.value) for r in records]
    finally:
        consumer.close()
    return got


def metadata(bootstrap: str, topic: str) -> tuple[list[str], int]:
    """(broker addresses, partition count of `topic`) as Metadata tells a client."""
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=CLIENT_WAIT_S)
    brokers = [f"{b.host}:{b.port}" for b in md.brokers.values()]
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        raise Failed(f"metadata for {topic}: {t and t.error}")
    return brokers, len(t.partitions)


def check_log(messages: list[tuple[bytes, bytes]], got: list[tuple[int, int, bytes, bytes]],
              what: str) -> None:
    """Every message exactly once, each partition's offsets 0..n-1 in order."""
    expect(sorted((k, v) for _, _, k, v in got) == sorted(messages),
           f"{what}: {len(got)} messages back, expected {len(messages)}")
    by_partition: dict[int, list[int]] = {}
    for partition, offset, _, _ in got:
        by_partition.setdefault(partition, []).append(offset)
    for partition, offsets in by_partition.items():
        expect(offsets == list(range(len(offsets))),
               f"{what}: partition {partition} offsets {offsets[:5]}...")


# ---------------------------------------------------------------------------- the test


class ImageTest:
    def __init__(self, eng: image.Engine, tag: str) -> None:
        self.eng = eng
        self.tag = tag
        self.run_id = f"odradek-image-test-{os.getpid()}"
        self.volume = f"{self.run_id}-data"
        self.containers: list[str] = []
        self.volumes: list[str] = [self.volume]
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.passed = 0
        self.stops: dict[str, int] = {}

    def step(self, name: str, fn: Callable[[], None]) -> None:
        started = time.monotonic()
        fn()
        self.passed += 1
        say(f"ok   {name} ({time.monotonic() - started:.1f} s)")

    def start_broker(self, name: str) -> None:
        self.containers.append(name)
        self.eng.output(
            "run", "-d", "--name", name,
            "-p", f"127.0.0.1:{self.port}:9092",
            "-v", f"{self.volume}:/var/lib/odradek",
            "-e", f"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{self.bootstrap}",
            "-e", "KAFKA_NUM_PARTITIONS=3",
            self.tag)
        wait_ready(self.port)

    def logs(self, name: str) -> str:
        result = self.eng.run("logs", name, capture=True, check=False)
        return result.stdout + result.stderr

    def stop(self, name: str) -> float:
        """SIGTERM the broker; returns how long it took to exit."""
        started = time.monotonic()
        self.eng.run("stop", "-t", "10", name, capture=True)
        elapsed = time.monotonic() - started
        code = self.eng.output("inspect", "--format", "{{.State.ExitCode}}", name)
        expect(code == "0", f"{name} exited with {code} after SIGTERM:\n{self.logs(name)}")
        expect(elapsed < STOP_BUDGET_S, f"{name} took {elapsed:.1f} s to stop")
        self.stops[name] = self.stops.get(name, 0) + 1
        expect(self.logs(name).count("stopped cleanly") == self.stops[name],
               f"{name}: no clean stop in its log")
        return elapsed

    def cluster_id(self, name: str) -> str:
        found = re.findall(r"cluster\.id=(\S+)", self.logs(name))
        expect(bool(found), f"{name}: no cluster.id in its log")
        return found[-1]

    def health(self, name: str) -> None:
        if self.eng.name == "podman":
            # Podman runs the image's HEALTHCHECK on demand (its timers need systemd).
            result = self.eng.run("healthcheck", "run", name, capture=True, check=False)
            expect(result.returncode == 0, f"healthcheck: {result.stdout}{result.stderr}")
        else:
            status = wait_for("docker health status healthy", lambda: self.eng.output(
                "inspect", "--format", "{{.State.Health.Status}}", name) == "healthy")
            expect(bool(status), "docker: container not healthy")

    def run(self, compose: bool) -> None:
        first, second = f"{self.run_id}-a", f"{self.run_id}-b"
        messages = [(f"key-{i % 17}".encode(), f"message-{i}".encode())
                    for i in range(MESSAGES)]

        def non_root() -> None:
            user = self.eng.output("image", "inspect", "--format", "{{.Config.User}}", self.tag)
            expect(user == "odradek", f"image user {user!r}")
            self.start_broker(first)
            uid = self.eng.output("exec", first, "id", "-u")
            expect(uid not in ("", "0"), f"the broker runs as uid {uid}")
            self.health(first)

        def configured() -> None:
            out = self.eng.output("run", "--rm", "--network", f"container:{first}",
                                  self.tag, "create-topics", "--bootstrap", "localhost:9092",
                                  TOPIC)
            expect(out == f"created {TOPIC} partitions=3", f"create-topics said {out!r}")
            brokers, partitions = metadata(self.bootstrap, TOPIC)
            expect(brokers == [self.bootstrap], f"advertised {brokers}")
            expect(partitions == 3, f"{partitions} partitions")

        def produce_consume() -> None:
            offsets = produce(self.bootstrap, messages)
            expect(sum(len(v) for v in offsets.values()) == MESSAGES, f"offsets {offsets}")
            check_log(messages, consume_confluent(self.bootstrap, 3, MESSAGES),
                      "confluent-kafka")

        def restart() -> None:
            cluster = self.cluster_id(first)
            say(f"     stopped in {self.stop(first):.2f} s")
            self.eng.run("start", first, capture=True)
            wait_ready(self.port)
            expect(self.cluster_id(first) == cluster, "cluster id changed on restart")
            got = consume_kafka_python(self.bootstrap, 3, MESSAGES)
            check_log(messages, got, "kafka-python after restart")
            held = {p: sum(1 for q, _, _, _ in got if q == p) for p in range(3)}
            extra = [(b"key-after-restart", b"after-restart")]
            ((partition, [offset]),) = produce(self.bootstrap, extra).items()
            expect(offset == held[partition],
                   f"new message at offset {offset}, partition {partition} held "
                   f"{held[partition]}")
            messages.extend(extra)
            check_log(messages, consume_confluent(self.bootstrap, 3, len(messages)),
                      "confluent-kafka after restart")
            say(f"     stopped in {self.stop(first):.2f} s")

        def new_container() -> None:
            cluster = self.cluster_id(first)
            self.eng.run("rm", first, capture=True)
            self.containers.remove(first)
            self.start_broker(second)
            expect(self.cluster_id(second) == cluster, "cluster id changed with the volume")
            check_log(messages, consume_confluent(self.bootstrap, 3, len(messages)),
                      "new container on the same volume")
            say(f"     stopped in {self.stop(second):.2f} s")

        self.step("non-root user, health check", non_root)
        self.step("KAFKA_* config, advertised listener, one-shot create-topics", configured)
        self.step(f"produce and consume {MESSAGES} messages (confluent-kafka)", produce_consume)
        self.step("SIGTERM stop < 5 s, restart keeps the data (kafka-python)", restart)
        self.step("a new container on the same named volume keeps the data", new_container)
        if compose:
            self.step("compose.yaml: broker, named volume, one-shot topic", self.compose)

    def compose(self) -> None:
        command = compose_command(self.eng)
        project = self.run_id
        port = free_port()
        env = {**self.eng.env, "ODRADEK_PORT": str(port), "ODRADEK_TOPIC": "compose-topic",
               "ODRADEK_IMAGE": self.tag}
        base = [*command, "-p", project, "-f", str(image.DOCKER_DIR / "compose.yaml")]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*base, *args], env=env, capture_output=True, text=True,
                                  timeout=180, check=False)

        try:
            up = run("up", "-d")
            expect(up.returncode == 0, f"compose up: {up.stdout}{up.stderr}")
            wait_ready(port)
            _, partitions = wait_for("the compose topic", lambda: _topic(port, "compose-topic"))
            expect(partitions == 3, f"compose topic has {partitions} partitions")
        finally:
            names = self.eng.output("ps", "-a", "--filter", f"label=com.docker.compose.project="
                                    f"{project}", "--format", "{{.Names}}").split()
            volumes = [v for n in names for v in self.eng.output(
                "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", n).split()]
            down = run("down", "-v")
            for volume in volumes:
                self.eng.run("volume", "rm", "-f", volume, check=False, capture=True)
            expect(down.returncode == 0, f"compose down: {down.stdout}{down.stderr}")

    def cleanup(self) -> None:
        for name in self.containers:
            self.eng.run("rm", "-f", "-v", name, check=False, capture=True)
        for volume in self.volumes:
            self.eng.run("volume", "rm", "-f", volume, check=False, capture=True)


def _topic(port: int, topic: str) -> tuple[list[str], int] | None:
    try:
        return metadata(f"127.0.0.1:{port}", topic)
    except Failed:
        return None


def compose_command(eng: image.Engine) -> list[str]:
    """`docker compose`, or `podman-compose` (installed with apt-get when missing)."""
    if eng.name == "docker":
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True,
                               check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
        if shutil.which("docker-compose"):
            return ["docker-compose"]
        raise Failed("docker has no compose plugin (install docker-compose-plugin)")
    if shutil.which("podman-compose") is None:
        image.apt_install(["podman-compose"], "the compose check")
    return ["podman-compose"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=image.DEFAULT_TAG)
    parser.add_argument("--base", default=os.environ.get("BASE_IMAGE") or None)
    parser.add_argument("--no-build", action="store_true", help="test an image already built")
    parser.add_argument("--no-compose", action="store_true", help="skip the compose check")
    args = parser.parse_args(argv)
    started = time.monotonic()
    eng = image.engine()
    if not args.no_build:
        image.build(args.tag, args.base, eng)
    test = ImageTest(eng, args.tag)
    failed = 0
    try:
        test.run(compose=not args.no_compose)
    except Failed as exc:
        failed = 1
        say(f"FAIL {exc}")
    finally:
        test.cleanup()
    say(f"{time.monotonic() - started:.0f} s with {eng.name}")
    print(f"image-test: {test.passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
