"""`odradek groups ...` against a running broker with a real consumer group (confluent-kafka):
describe shows its members and lag; reset-offsets refuses an active group, dry-runs by
default, and what it executes is where the group's next consumer starts."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import cli
from tests.clients.conftest import in_thread
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


class GroupMember:
    """A confluent-kafka consumer in group `group`, polled from its own thread until
    `stop`; `records` collects (partition, offset, value)."""

    def __init__(self, bootstrap: str, group: str, topic: str, **extra: Any) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest",
                                  "enable.auto.commit": False, **extra})
        self.consumer.subscribe([topic])
        self.records: list[tuple[int, int, bytes]] = []
        self.assigned = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self.consumer.poll(0.1)
            if self.consumer.assignment():
                self.assigned.set()
            if msg is None or msg.error():
                continue
            self.records.append((msg.partition(), msg.offset(), msg.value()))
            self.consumer.commit(msg, asynchronous=False)

    def wait_for(self, count: int, timeout: float = 60) -> list[tuple[int, int, bytes]]:
        import time

        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            self._stop.wait(0.05)
        return sorted(self.records)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(30)
        self.consumer.close()


def produce_lines(broker: RunningBroker, topic: str, per_partition: int, partitions: int,
                  timestamp: int | None = None) -> str:
    rows = []
    for p in range(partitions):
        for i in range(per_partition):
            row: dict[str, Any] = {"value": f"p{p}-{i}", "partition": p}
            if timestamp is not None:
                row["timestamp"] = timestamp + 1000 * i
            rows.append(json.dumps(row))
    return "\n".join(rows) + "\n"


def table(stdout: str, first_column: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_column])
    return [line.split() for line in lines[start + 1:] if line.strip()]


async def test_describe_and_reset_a_real_consumer_group(broker: RunningBroker,
                                                        make_topic: Any) -> None:
    make_topic("jobs", 2)
    produced = await cli(broker, "produce", "jobs", "--format", "json",
                         input=produce_lines(broker, "jobs", 5, 2, timestamp=1_000_000))
    assert produced.exit_code == 0, produced.stderr

    member = await in_thread(GroupMember, broker.bootstrap, "workers", "jobs")
    try:
        assert len(await in_thread(member.wait_for, 10)) == 10
        described = await cli(broker, "groups", "describe", "workers")
        assert described.exit_code == 0, described.stderr
        assert "GROUP: workers  STATE: Stable  TYPE: classic  ASSIGNOR: range" in described.stdout
        rows = table(described.stdout, "TOPIC")
        assert [r[:5] for r in rows] == [["jobs", "0", "5", "5", "0"], ["jobs", "1", "5", "5", "0"]]
        assert all(r[5].startswith("rdkafka-") for r in rows)
        members = await cli(broker, "groups", "describe", "workers", "--members")
        assert table(members.stdout, "CONSUMER-ID")[0][4:] == ["2", "jobs-0,jobs-1"]

        refused = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs",
                            "--to-earliest", "--execute")
        assert refused.exit_code == 1
        assert refused.stderr.strip() == ("Error: Assignments can only be reset if the group "
                                          "'workers' is inactive, but the current state is "
                                          "Stable.")
    finally:
        await in_thread(member.close)

    listed = await cli(broker, "groups", "list")
    assert ["workers", "classic", "Empty", "consumer"] in table(listed.stdout, "GROUP")

    dry = await cli(broker, "groups", "reset-offsets", "workers", "--all-topics", "--to-earliest")
    assert dry.exit_code == 0, dry.stderr
    assert table(dry.stdout, "GROUP") == [["workers", "jobs", "0", "0"],
                                          ["workers", "jobs", "1", "0"]]
    assert "Dry run" in dry.stderr
    after_dry = await cli(broker, "groups", "describe", "workers")
    assert [r[2] for r in table(after_dry.stdout, "TOPIC")] == ["5", "5"]

    clamped = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs:0",
                        "--to-offset", "99")
    assert table(clamped.stdout, "GROUP") == [["workers", "jobs", "0", "5"]]
    assert "New offset (99) is higher than latest offset for topic partition jobs-0. " \
           "Value will be set to 5" in clamped.stderr
    by_time = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs",
                        "--to-datetime", "1970-01-01T00:16:42.000")
    assert table(by_time.stdout, "GROUP") == [["workers", "jobs", "0", "2"],
                                              ["workers", "jobs", "1", "2"]]
    no_scope = await cli(broker, "groups", "reset-offsets", "workers", "--to-latest")
    assert no_scope.exit_code == 1
    assert "One of the reset scopes should be defined: --all-topics, --topic." in no_scope.stderr
    unknown = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs:7",
                        "--to-latest")
    assert unknown.exit_code == 1
    assert 'UNKNOWN_TOPIC_OR_PARTITION: The partitions "jobs-7" do not exist' in unknown.stderr

    shift = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs:1",
                      "--shift-by", "-2", "--execute")
    assert table(shift.stdout, "GROUP") == [["workers", "jobs", "1", "3"]]
    earliest = await cli(broker, "groups", "reset-offsets", "workers", "--topic", "jobs:0",
                         "--to-earliest", "--execute")
    assert earliest.exit_code == 0 and "Dry run" not in earliest.stderr

    # A new member of the group starts where the reset put it.
    member = await in_thread(GroupMember, broker.bootstrap, "workers", "jobs")
    try:
        seen = await in_thread(member.wait_for, 7)
    finally:
        await in_thread(member.close)
    assert [(p, o) for p, o, _ in seen] == [(0, i) for i in range(5)] + [(1, 3), (1, 4)]


async def test_reset_plan_export_and_from_file(broker: RunningBroker, make_topic: Any,
                                               tmp_path: Path) -> None:
    make_topic("plan", 1)
    await cli(broker, "produce", "plan", input="a\nb\nc\n")
    exported = await cli(broker, "groups", "reset-offsets", "g", "--topic", "plan",
                         "--to-offset", "1", "--export")
    assert exported.stdout == "plan,0,1\n"
    plan = tmp_path / "plan.csv"
    plan.write_text(exported.stdout)
    applied = await cli(broker, "groups", "reset-offsets", "g", "--from-file", str(plan),
                        "--execute")
    assert applied.exit_code == 0, applied.stderr
    consumed = await cli(broker, "consume", "plan", "--group", "g", "--max-messages", "2")
    assert consumed.stdout == "b\nc\n"
    missing = await cli(broker, "groups", "describe", "nobody")
    assert missing.exit_code == 1
    assert "Consumer group 'nobody' does not exist." in missing.stderr
    assert re.search(r"STATE: Empty", (await cli(broker, "groups", "describe", "g")).stdout)


async def test_describe_a_kip848_consumer_group(broker: RunningBroker, make_topic: Any) -> None:
    make_topic("modern", 2)
    await cli(broker, "produce", "modern", input="a\nb\n")
    member = await in_thread(GroupMember, broker.bootstrap, "new-protocol", "modern",
                             **{"group.protocol": "consumer"})
    try:
        assert len(await in_thread(member.wait_for, 2)) == 2
        described = await cli(broker, "groups", "describe", "new-protocol", "--members")
    finally:
        await in_thread(member.close)
    assert described.exit_code == 0, described.stderr
    assert "STATE: Stable  TYPE: consumer" in described.stdout
    assert table(described.stdout, "CONSUMER-ID")[0][-2:] == ["2", "modern-0,modern-1"]
    listed = await cli(broker, "groups", "list")
    assert table(listed.stdout, "GROUP")[0][:2] == ["new-protocol", "consumer"]
