"""Driver of the kafka-cli-tools row: compat/SCENARIOS.md through Apache Kafka's own tools only.

    python3 driver.py --bootstrap 127.0.0.1:PORT --run-id RID --scenarios s1,s2,...

How this works
--------------
Each scenario is a sequence of tool runs (`kafkatools.Tools`: kafka-topics, kafka-configs,
kafka-broker-api-versions, kafka-console-producer/-consumer, kafka-consumer-groups,
kafka-delete-records, kafka-get-offsets, kafka-verifiable-producer, all from Kafka 4.4's jars)
whose printed output is parsed and checked. A scenario has a 60 s budget that bounds every tool
run in it. One JSON line per scenario goes to stdout; the tools' own output and logs go to
stderr.

What the tools cannot express:
- `produce-consume`: kafka-console-producer cannot set a record's create time. The driver
  produces and checks everything else (key and headers, null and empty key and value, a
  1,000,000-byte record, offsets 0..3, CreateTime timestamps) and reports `n/a` with that
  reason when all of it matches, `fail` otherwise.
- `list-offsets-by-time`: the create times are set with kafka-verifiable-producer
  (`--message-create-time`, one record per run), which adds the milliseconds between its start
  and its send to the given time; the driver reads the timestamps back and checks that each
  is within 500 ms after the scenario's, which leaves every expected lookup result unchanged.
- `transactions`: no tool writes transactions (kafka-transactions lists, describes and aborts
  them; the console producer has no transactional mode), so `n/a`.
- `consumer-group`: the three members are three kafka-console-consumer processes (a process
  per member, not threads of the driver); their assignments and the group's committed offsets
  are read with kafka-consumer-groups.
- The console producer picks partitions with the default partitioner; where a scenario wants
  records in given partitions, the driver picks keys that Kafka's murmur2 hash sends there and
  checks the result with kafka-get-offsets.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kafkatools import (
    NULL,
    RECORD_FORMAT,
    Budget,
    Mismatch,
    Record,
    ToolError,
    Tools,
    parse_assignment,
    parse_offsets,
    parse_records,
    parse_table,
    partition_for,
)

CLIENT = "kafka-cli-tools"
SCENARIO_BUDGET_S = 60.0
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
T0 = 1_700_000_000_000


class NotApplicable(Exception):
    """The tools cannot express (part of) the scenario; the message says what and why."""


def expect(expected: object, actual: object, what: str) -> None:
    if expected != actual:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}"[:600])


def eventually(seconds: float, what: str, probe: Callable[[], bool]) -> None:
    """Re-run `probe` (itself a tool run, about a second) until true, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise Mismatch(f"{what} (not within {seconds:.0f} s)")
        time.sleep(0.2)


class Scenarios:
    def __init__(self, bootstrap: str, run_id: str, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.run_id = run_id
        self.workdir = workdir
        self.tools = Tools(bootstrap)

    def topic(self, scenario: str) -> str:
        return f"compat-{CLIENT}-{scenario}-{self.run_id}"

    def step(self, text: str) -> None:
        self.tools.budget.step = text

    # -- the tools, as the scenarios use them -------------------------------------------------

    def create(self, topic: str, partitions: int, *configs: str) -> None:
        self.step(f"creating {topic}")
        args = ["--create", "--topic", topic, "--partitions", str(partitions)]
        for config in configs:
            args += ["--config", config]
        out = self.tools.run("kafka-topics", *args)
        if f"Created topic {topic}." not in out:
            raise Mismatch(f"kafka-topics --create printed {out.strip()!r}")

    def produce(self, topic: str, lines: list[str], *extra: str, keys: bool = False,
                headers: bool = False) -> None:
        """Console producer: one record per line, `[headers\\t][key\\t]value`, `<null>` = null."""
        self.step(f"producing {len(lines)} records to {topic}")
        args = ["--topic", topic, "--reader-property", f"null.marker={NULL}", *extra]
        if keys:
            args += ["--reader-property", "parse.key=true"]
        if headers:
            args += ["--reader-property", "parse.headers=true"]
        self.tools.run("kafka-console-producer", *args, stdin="".join(f"{x}\n" for x in lines))

    def consume(self, topic: str, partition: int, count: int, *extra: str) -> list[Record]:
        """Console consumer of one partition from its earliest offset, no group."""
        self.step(f"consuming {count} records from {topic}-{partition}")
        out = self.tools.run("kafka-console-consumer", "--topic", topic, "--partition",
                             str(partition), "--offset", "earliest", "--max-messages", str(count),
                             "--timeout-ms", "20000", *RECORD_FORMAT, *extra)
        return parse_records(out)

    def offsets(self, topic: str, time_spec: str) -> dict[int, int]:
        self.step(f"kafka-get-offsets --time {time_spec} on {topic}")
        return parse_offsets(self.tools.run("kafka-get-offsets", "--topic", re.escape(topic),
                                            "--time", time_spec))

    def describe_topic(self, topic: str) -> tuple[int, dict[int, int]]:
        """kafka-topics --describe: (PartitionCount, {partition: leader})."""
        out = self.tools.run("kafka-topics", "--describe", "--topic", topic)
        count = re.search(r"PartitionCount:\s*(\d+)", out)
        if not count:
            raise Mismatch(f"kafka-topics --describe printed no PartitionCount: {out[:300]!r}")
        leaders = {int(p): int(leader) for p, leader in
                   re.findall(r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+)", out)}
        return int(count.group(1)), leaders

    def topic_list(self) -> set[str]:
        return set(self.tools.run("kafka-topics", "--list").split())

    def brokers(self) -> list[tuple[str, int]]:
        """kafka-broker-api-versions: [(host:port, id)] of every broker it lists."""
        self.step("kafka-broker-api-versions")
        out = self.tools.run("kafka-broker-api-versions")
        return [(m.group(1), int(m.group(2)))
                for m in re.finditer(r"^(\S+) \(id: (-?\d+) rack", out, re.MULTILINE)]

    def topic_config(self, topic: str, name: str) -> str | None:
        out = self.tools.run("kafka-configs", "--describe", "--entity-type", "topics",
                             "--entity-name", topic)
        match = re.search(rf"^\s*{re.escape(name)}=(\S*)", out, re.MULTILINE)
        return match.group(1) if match else None

    # -- scenarios --------------------------------------------------------------------------

    def metadata(self) -> None:
        topic = self.topic("metadata")
        self.create(topic, 1)
        brokers = self.brokers()
        expect(1, len(brokers), f"brokers listed by kafka-broker-api-versions {brokers}")
        expect(self.bootstrap, brokers[0][0], "the broker's address")
        self.step("kafka-topics --list")
        if topic not in self.topic_list():
            raise Mismatch(f"{topic} missing from kafka-topics --list")
        self.step(f"kafka-topics --describe {topic}")
        count, leaders = self.describe_topic(topic)
        expect(1, count, "PartitionCount")
        expect({0: brokers[0][1]}, leaders, "partition leaders")

    def topics_admin(self) -> None:
        topic = self.topic("topics-admin")
        self.create(topic, 3, "retention.ms=3600000")
        broker_id = self.brokers()[0][1]
        self.step(f"kafka-topics --describe {topic}")
        count, leaders = self.describe_topic(topic)
        expect(3, count, "PartitionCount after create")
        expect({0: broker_id, 1: broker_id, 2: broker_id}, leaders, "leaders after create")
        self.step("kafka-configs --describe")
        expect("3600000", self.topic_config(topic, "retention.ms"), "retention.ms after create")
        self.step("kafka-configs --alter --add-config retention.ms=7200000")
        self.tools.run("kafka-configs", "--alter", "--entity-type", "topics", "--entity-name",
                       topic, "--add-config", "retention.ms=7200000")
        eventually(10, "retention.ms reads back as 7200000",
                   lambda: self.topic_config(topic, "retention.ms") == "7200000")
        self.step("kafka-topics --alter --partitions 5")
        self.tools.run("kafka-topics", "--alter", "--topic", topic, "--partitions", "5")
        eventually(10, f"{topic} described with 5 partitions",
                   lambda: self.describe_topic(topic)[0] == 5)
        self.step("kafka-topics --delete")
        self.tools.run("kafka-topics", "--delete", "--topic", topic)
        eventually(10, f"{topic} gone from kafka-topics --list",
                   lambda: topic not in self.topic_list())

    def produce_consume(self) -> None:
        topic = self.topic("produce-consume")
        self.create(topic, 1)
        big = "".join(chr(ord("a") + i % 26) for i in range(1_000_000))
        lines = [
            "h1:v1,h2:\tkey\tvalue",     # two headers, h2 empty
            f"{NULL}\t{NULL}\t{NULL}",   # no headers, null key, null value
            f"{NULL}\t\t",               # no headers, empty key, empty value
            f"{NULL}\tbig\t{big}",       # the 1,000,000-byte record
        ]
        # The default max.request.size (1048576) already admits the large record.
        self.produce(topic, lines, keys=True, headers=True)
        got = self.consume(topic, 0, 4)
        expect(4, len(got), "records consumed")
        expected = [([("h1", "v1"), ("h2", "")], "key", "value"), (None, NULL, NULL),
                    (None, "", ""), (None, "big", big)]
        for i, (record, (headers, key, value)) in enumerate(zip(got, expected, strict=True)):
            expect(i, record.offset, f"offset of record {i}")
            expect(headers, record.headers, f"headers of record {i}")
            expect(key, record.key, f"key of record {i}")
            if record.value != value:
                raise Mismatch(f"value of record {i} differs ({len(record.value)} characters)")
            expect("CreateTime", record.timestamp_type, f"timestamp type of record {i}")
        raise NotApplicable(
            "kafka-console-producer cannot set a record's create time (1700000000000); the "
            "rest matched: key and headers (h2 empty), null key and value, empty key and "
            "value, the 1,000,000-byte record, offsets 0..3")

    def produce_codec(self, codec: str) -> None:
        topic = f"compat-codec-{codec}-{CLIENT}-{self.run_id}"
        self.create(topic, 1)
        lines = [f"i:{i}\tk{i}\t" + f"codec {codec} record {i} " * 8 for i in range(100)]
        self.produce(topic, lines, "--compression-codec", codec, keys=True, headers=True)
        expect({0: 100}, self.offsets(topic, "latest"), "end offset after producing")

    def consume_codec(self, codec: str, writer: str) -> None:
        topic = f"compat-codec-{codec}-{writer}-{self.run_id}"
        got = self.consume(topic, 0, 100)
        expect(100, len(got), f"records read from {topic}")
        for i, record in enumerate(got):
            expect(i, record.offset, f"offset of record {i}")
            expect(f"k{i}", record.key, f"key of record {i}")
            expect(f"codec {codec} record {i} " * 8, record.value, f"value of record {i}")
            expect([("i", str(i))], record.headers, f"headers of record {i}")

    def list_offsets_by_time(self) -> None:
        topic = self.topic("list-offsets-by-time")
        self.create(topic, 1)
        for i in range(3):
            self.step(f"kafka-verifiable-producer --message-create-time {T0 + 1000 * i}")
            out = self.tools.run("kafka-verifiable-producer", "--topic", topic,
                                 "--max-messages", "1", "--acks", "-1",
                                 "--message-create-time", str(T0 + 1000 * i))
            if '"name":"producer_send_success"' not in out.replace(" ", ""):
                raise Mismatch(f"kafka-verifiable-producer did not report a send: {out[-300:]!r}")
        got = self.consume(topic, 0, 3)
        stamps = [r.timestamp for r in got]
        expect(3, len(stamps), "records read back")
        for i, ts in enumerate(stamps):
            if not T0 + 1000 * i <= ts < T0 + 1000 * i + 500:
                raise Mismatch(f"record {i} has create time {ts}, not within 500 ms after "
                               f"{T0 + 1000 * i} (the verifiable producer's clock drift)")
        expect({0: 0}, self.offsets(topic, "earliest"), "earliest offset")
        expect({0: 3}, self.offsets(topic, "latest"), "latest offset")
        expect({0: 1}, self.offsets(topic, str(T0 + 500)), "offset for 1700000000500")
        expect({0: 2}, self.offsets(topic, str(T0 + 2000)), "offset for 1700000002000")
        expect({}, self.offsets(topic, str(T0 + 3000)), "offset for 1700000003000 (none)")

    def consumer_group(self) -> None:
        GroupRun(self).run()

    def resume_committed(self) -> None:
        topic = self.topic("resume-committed")
        group = f"compat-{CLIENT}-resume-{self.run_id}"
        self.create(topic, 1)
        self.produce(topic, [f"record {i}" for i in range(10)])
        # The first consumer reads 4 records and closes; with max.poll.records=4 its position,
        # which auto-commit commits on close, is exactly the 4 records it consumed.
        self.step("first console consumer of the group reading 4 records")
        out = self.tools.run("kafka-console-consumer", "--topic", topic, "--group", group,
                             "--from-beginning", "--max-messages", "4", "--timeout-ms", "20000",
                             "--command-property", "max.poll.records=4", *RECORD_FORMAT)
        expect([0, 1, 2, 3], [r.offset for r in parse_records(out)], "first consumer's offsets")
        self.step("kafka-consumer-groups --describe --offsets")
        rows = self.group_offsets(group)
        expect({0: "4"}, {int(r["PARTITION"]): r["CURRENT-OFFSET"] for r in rows},
               "committed offsets")
        self.step("second console consumer of the group resuming")
        out = self.tools.run("kafka-console-consumer", "--topic", topic, "--group", group,
                             "--max-messages", "6", "--timeout-ms", "20000", *RECORD_FORMAT)
        got = parse_records(out)
        expect([4, 5, 6, 7, 8, 9], [r.offset for r in got], "offsets read after resuming")
        expect([f"record {i}" for i in range(4, 10)], [r.value for r in got], "values read")

    def group_offsets(self, group: str) -> list[dict[str, str]]:
        out = self.tools.run("kafka-consumer-groups", "--describe", "--group", group,
                             "--offsets")
        return parse_table(out, "GROUP")

    def idempotent_producer(self) -> None:
        topic = self.topic("idempotent-producer")
        self.create(topic, 3)
        # Idempotence is the producer's default; set it so a config conflict fails loudly.
        self.produce(topic, [f"k{i}\t{i}" for i in range(1000)], "--command-property",
                     "enable.idempotence=true", keys=True)
        ends = self.offsets(topic, "latest")
        expected_ends = {p: sum(1 for i in range(1000) if partition_for(f"k{i}", 3) == p)
                         for p in range(3)}
        expect(expected_ends, ends, "end offsets (records per partition)")
        seen: set[int] = set()
        for p in range(3):
            got = self.consume(topic, p, ends[p])
            values = [int(r.value) for r in got]
            expect(sorted(values), values, f"order of the records in partition {p}")
            expect(list(range(ends[p])), [r.offset for r in got], f"offsets in partition {p}")
            twice = seen.intersection(values)
            if twice:
                raise Mismatch(f"records consumed twice: {sorted(twice)[:10]}")
            seen.update(values)
        expect(set(range(1000)), seen, "records consumed")

    def transactions(self) -> None:
        raise NotApplicable(
            "Kafka's command-line tools have no transactional producer: kafka-console-producer "
            "cannot begin, commit or abort a transaction, and kafka-transactions only lists, "
            "describes and aborts existing ones")

    def delete_records(self) -> None:
        topic = self.topic("delete-records")
        self.create(topic, 1)
        self.produce(topic, [f"record {i}" for i in range(10)])
        spec = self.workdir / "delete-records.json"
        spec.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "offset": 5}]}))
        self.step("kafka-delete-records --offset-json-file")
        out = self.tools.run("kafka-delete-records", "--offset-json-file", str(spec))
        match = re.search(rf"partition: {re.escape(topic)}-0\s+low_watermark: (\d+)", out)
        expect("5", match.group(1) if match else out.strip()[-200:], "low_watermark printed")
        expect({0: 5}, self.offsets(topic, "earliest"), "earliest offset")
        got = self.consume(topic, 0, 5)
        expect([5, 6, 7, 8, 9], [r.offset for r in got], "offsets read from the beginning")
        expect([f"record {i}" for i in range(5, 10)], [r.value for r in got], "values read")

    # -- dispatch ---------------------------------------------------------------------------

    def run(self, scenario: str) -> dict[str, object]:
        start = time.monotonic()
        self.tools.budget = Budget(SCENARIO_BUDGET_S)
        status, reason = "pass", ""
        try:
            self.dispatch(scenario)
        except NotApplicable as e:
            status, reason = "n/a", str(e)
        except Mismatch as e:
            status, reason = "fail", str(e)
        except (subprocess.TimeoutExpired, TimeoutError):
            status = "fail"
            reason = f"timed out after {SCENARIO_BUDGET_S:.0f} s while {self.tools.budget.step}"
        except ToolError as e:
            status, reason = "fail", f"{e} (while {self.tools.budget.step})"
        except Exception as e:  # noqa: BLE001 - any other error is this scenario's failure
            status = "fail"
            reason = f"{type(e).__name__}: {e} (while {self.tools.budget.step})"
        return {"scenario": scenario, "status": status, "reason": reason[:800],
                "seconds": round(time.monotonic() - start, 1)}

    def dispatch(self, scenario: str) -> None:
        if scenario.startswith("produce-codec-"):
            codec = scenario.removeprefix("produce-codec-")
            if codec not in CODECS:
                raise Mismatch(f"unknown codec {codec}")
            return self.produce_codec(codec)
        if scenario.startswith("consume-codec-"):
            codec, _, writer = scenario.removeprefix("consume-codec-").partition(":")
            if codec not in CODECS or not writer:
                raise Mismatch(f"bad scenario {scenario}")
            return self.consume_codec(codec, writer)
        handlers: dict[str, Callable[[], None]] = {
            "metadata": self.metadata,
            "topics-admin": self.topics_admin,
            "produce-consume": self.produce_consume,
            "list-offsets-by-time": self.list_offsets_by_time,
            "consumer-group": self.consumer_group,
            "resume-committed": self.resume_committed,
            "idempotent-producer": self.idempotent_producer,
            "transactions": self.transactions,
            "delete-records": self.delete_records,
        }
        if scenario not in handlers:
            raise Mismatch(f"unknown scenario {scenario}")
        return handlers[scenario]()


class GroupRun:
    """`consumer-group` with three kafka-console-consumer processes as the members.

    600 records go to 6 partitions (100 each, by keys the default partitioner sends there),
    then member 0, 1 and 2 start one after another (each once the previous ones hold
    partitions, as kafka-consumer-groups --describe --members --verbose shows), with the
    console consumer's defaults for a group (auto-commit) and `--from-beginning` (the group
    is new). Once all three hold partitions, member 1 gets SIGTERM (the console consumer closes:
    it commits and leaves the group). Then the group's committed offsets must reach 100 on
    every partition, the two remaining members must hold the 6 partitions without overlap,
    and, once they are stopped too, their printed records together must cover all 600.
    """

    PARTITIONS = 6
    PER_PARTITION = 100

    def __init__(self, scenarios: Scenarios) -> None:
        self.s = scenarios
        self.topic = scenarios.topic("consumer-group")
        self.group = f"compat-{CLIENT}-group-{scenarios.run_id}"
        self.members: dict[str, subprocess.Popen[bytes]] = {}
        self.outputs: dict[str, Path] = {}

    def run(self) -> None:
        s = self.s
        s.create(self.topic, self.PARTITIONS)
        keys = {}
        for p in range(self.PARTITIONS):
            keys[p] = next(f"p{p}-{j}" for j in range(10_000)
                           if partition_for(f"p{p}-{j}", self.PARTITIONS) == p)
        s.produce(self.topic, [f"{keys[p]}\t{p}-{i}" for p in range(self.PARTITIONS)
                               for i in range(self.PER_PARTITION)], keys=True)
        expect({p: self.PER_PARTITION for p in range(self.PARTITIONS)},
               s.offsets(self.topic, "latest"), "records per partition")
        try:
            for m in range(3):
                self.start(f"member-{m}")
                started = list(self.members)
                s.step(f"waiting until {', '.join(started)} hold partitions")
                eventually(40, f"{started} all holding partitions",
                           lambda: all(self.assignments().get(x) for x in self.members))
            s.step("stopping member-1")
            self.stop("member-1")
            s.step("waiting for the remaining members to finish the topic")
            final: dict[str, set[tuple[str, int]]] = {}

            def finished() -> bool:
                rows = s.group_offsets(self.group)
                done = sum(1 for r in rows if r["CURRENT-OFFSET"] == str(self.PER_PARTITION))
                if done != self.PARTITIONS:
                    return False
                final.clear()
                final.update(self.assignments())
                held: set[tuple[str, int]] = set().union(*final.values()) if final else set()
                return len(held) == self.PARTITIONS and set(final) == {"member-0", "member-2"}

            eventually(40, "committed offsets 100 on every partition and the 6 partitions "
                       "held by member-0 and member-2", finished)
            total = sum(len(x) for x in final.values())
            expect(self.PARTITIONS, total, f"partitions held in the final assignment {final} "
                   "(a partition owned twice?)")
        finally:
            for name in list(self.members):
                self.stop(name)
        consumed = set()
        for path in self.outputs.values():
            for r in parse_records(path.read_text(errors="replace")):
                consumed.add((r.partition, r.offset))
        missing = {(p, o) for p in range(self.PARTITIONS) for o in range(self.PER_PARTITION)}
        missing -= consumed
        if missing:
            raise Mismatch(f"{len(missing)} records read by no member, e.g. {sorted(missing)[:5]}")

    def start(self, name: str) -> None:
        self.s.step(f"starting {name}")
        path = self.s.workdir / f"{self.group}-{name}.out"
        self.outputs[name] = path
        self.members[name] = self.s.tools.start(
            "kafka-console-consumer", "--topic", self.topic, "--group", self.group,
            "--from-beginning", "--command-property", f"client.id={name}", *RECORD_FORMAT,
            stdout=path)

    def stop(self, name: str) -> None:
        proc = self.members.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def assignments(self) -> dict[str, set[tuple[str, int]]]:
        """CLIENT-ID -> partitions, from kafka-consumer-groups --describe --members --verbose."""
        for name, proc in self.members.items():
            if proc.poll() is not None:
                raise Mismatch(f"{name} (kafka-console-consumer) exited {proc.returncode}")
        out = self.s.tools.run("kafka-consumer-groups", "--describe", "--group", self.group,
                               "--members", "--verbose", check=False)
        held = {}
        for row in parse_table(out, "GROUP"):
            cell = row.get("CURRENT-ASSIGNMENT", row.get("ASSIGNMENT", "-"))
            held[row["CLIENT-ID"]] = {tp for tp in parse_assignment(cell) if tp[0] == self.topic}
        return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--scenarios", required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kafka-cli-tools-") as work:
        scenarios = Scenarios(args.bootstrap, args.run_id, Path(work))
        for name in [x.strip() for x in args.scenarios.split(",") if x.strip()]:
            result = scenarios.run(name)
            print(f"[{CLIENT}] {name}: {result['status']} {result['reason']}", file=sys.stderr)
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
