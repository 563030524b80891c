"""`odradek produce` and `odradek consume` against a running broker, cross-checked with
real clients: records the CLI writes are read by kafka-python and confluent-kafka, and
records those clients write are read by the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import cli
from tests.clients.conftest import in_thread
from tests.conftest import RunningBroker

pytestmark = pytest.mark.timeout(120)


def kafka_python_read(bootstrap: str, topic: str, count: int) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, enable_auto_commit=False)
    records = []
    try:
        for record in consumer:
            records.append(record)
            if len(records) == count:
                break
    finally:
        consumer.close()
    return records


def confluent_produce(bootstrap: str, topic: str, records: list[tuple[Any, ...]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value, headers, partition in records:
        producer.produce(topic, key=key, value=value, headers=headers, partition=partition)
    assert producer.flush(30) == 0


def confluent_committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)],
                                   timeout=30)
    finally:
        consumer.close()
    return [tp.offset for tp in found]


async def test_produced_with_keys_and_headers_read_by_kafka_python(broker: RunningBroker,
                                                                   make_topic: Any) -> None:
    from kafka.partitioner.default import murmur2

    make_topic("keyed", 3)
    keys = [f"key-{i}" for i in range(12)]
    lines = "".join(f"trace:{i},origin:cli\t{key}\tvalue {i}\n" for i, key in enumerate(keys))
    produced = await cli(broker, "produce", "keyed", "--parse-key", "--parse-headers",
                         "--header", "tool=odradek", "--compression", "zstd", input=lines)
    assert produced.exit_code == 0, produced.stderr
    assert (produced.stdout, produced.stderr) == ("", "Produced 12 records to keyed\n")
    records = await in_thread(kafka_python_read, broker.bootstrap, "keyed", 12)
    by_key = {r.key.decode(): r for r in records}
    assert sorted(by_key) == sorted(keys)
    for i, key in enumerate(keys):
        record = by_key[key]
        assert record.value == f"value {i}".encode()
        assert record.headers == [("trace", str(i).encode()), ("origin", b"cli"),
                                  ("tool", b"odradek")]
        # The Java client's (and kafka-python's) partitioner: murmur2 of the key.
        assert record.partition == (murmur2(key.encode()) & 0x7FFFFFFF) % 3

    bad = await cli(broker, "produce", "keyed", "--parse-key", input="a\tb\nno separator\n")
    assert bad.exit_code == 1
    assert "No key separator found on line number 2: 'no separator'" in bad.stderr


async def test_json_lines_from_a_file(broker: RunningBroker, make_topic: Any,
                                      tmp_path: Path) -> None:
    make_topic("docs", 2)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(obj) for obj in [
        {"key": "a", "value": {"n": 1}, "headers": {"h": "x"}, "partition": 1,
         "timestamp": 1700000000000},
        {"key": "b", "value": None, "partition": 0},
        {"key_base64": "/gE=", "value_base64": "/w==", "partition": 0},
    ]) + "\n")
    produced = await cli(broker, "produce", "docs", "--format", "json", "--input", str(source))
    assert produced.exit_code == 0, produced.stderr
    records = await in_thread(kafka_python_read, broker.bootstrap, "docs", 3)
    seen = sorted((r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
                  for r in records)
    assert [s[:5] for s in seen] == [(0, 0, b"b", None, []), (0, 1, b"\xfe\x01", b"\xff", []),
                                     (1, 0, b"a", b'{"n":1}', [("h", b"x")])]
    assert seen[2][5] == 1700000000000

    out = tmp_path / "out.jsonl"
    consumed = await cli(broker, "consume", "docs", "--from-beginning", "--max-messages", "3",
                         "--format", "json", "--output", str(out))
    assert consumed.exit_code == 0, consumed.stderr
    assert consumed.stderr == "Processed a total of 3 messages\n"
    rows = sorted((json.loads(line) for line in out.read_text().splitlines()),
                  key=lambda r: (r["partition"], r["offset"]))
    assert rows[0] == {"topic": "docs", "partition": 0, "offset": 0, "key": "b", "value": None,
                       "headers": [], "timestamp": rows[0]["timestamp"],
                       "timestamp_type": "CreateTime"}
    assert (rows[1]["key_base64"], rows[1]["value_base64"]) == ("/gE=", "/w==")
    assert rows[2]["value"] == '{"n":1}' and rows[2]["headers"] == [{"key": "h", "value": "x"}]
    assert rows[2]["timestamp"] == 1700000000000


async def test_consume_what_confluent_kafka_wrote_with_a_group_and_a_progress_bar(
        broker: RunningBroker, make_topic: Any) -> None:
    make_topic("events", 2)
    sent = [(f"k{i}".encode(), f"v{i}".encode(), [("n", str(i).encode())], i % 2)
            for i in range(40)]
    await in_thread(confluent_produce, broker.bootstrap, "events", sent)

    first = await cli(broker, "consume", "events", "--group", "readers", "--from-beginning",
                      "--max-messages", "30", "--print-key", "--print-headers",
                      "--print-partition", "--print-offset", "--progress")
    assert first.exit_code == 0, first.stderr
    rows = [line.split("\t") for line in first.stdout.splitlines()]
    assert len(rows) == 30
    for partition, offset, headers, key, value in rows:
        i = int(value[1:])
        assert (partition, key, headers) == (f"Partition:{i % 2}", f"k{i}", f"n:{i}")
        assert offset == f"Offset:{i // 2}"
    # The progress bar for a known number of records, drawn on stderr.
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", first.stderr)
    assert re.search(r"consuming events ━+ 30/30 records", drawn), drawn
    assert first.stderr.rstrip().endswith("Processed a total of 30 messages")

    delivered = {}
    for partition, offset, *_ in rows:
        p, o = int(partition.split(":")[1]), int(offset.split(":")[1])
        delivered[p] = max(delivered.get(p, -1), o + 1)
    committed = await in_thread(confluent_committed, broker.bootstrap, "readers", "events", 2)
    assert committed == [delivered[0], delivered[1]]

    rest = await cli(broker, "consume", "events", "--group", "readers", "--timeout-ms", "1000")
    assert rest.exit_code == 0, rest.stderr
    values = sorted(int(v[1:]) for v in rest.stdout.split())
    assert len(values) == 10 and not set(values) & {int(r[4][1:]) for r in rows}
    assert await in_thread(confluent_committed, broker.bootstrap, "readers", "events", 2) == \
        [20, 20]


async def test_consume_from_an_offset_and_bad_options(broker: RunningBroker,
                                                      make_topic: Any) -> None:
    make_topic("few", 1)
    produced = await cli(broker, "produce", "few", "--acks", "0", input="a\nb\nc\nd\n")
    assert produced.exit_code == 0, produced.stderr
    from_two = await cli(broker, "consume", "few", "--partition", "0", "--offset", "2",
                         "--max-messages", "2")
    assert (from_two.exit_code, from_two.stdout) == (0, "c\nd\n")
    missing = await cli(broker, "consume", "nope", "--max-messages", "1")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: UNKNOWN_TOPIC_OR_PARTITION: ")
    needs_partition = await cli(broker, "consume", "few", "--offset", "1")
    assert needs_partition.exit_code == 1
    assert "The partition is required when offset is specified." in needs_partition.stderr


def confluent_transactions(bootstrap: str, topic: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "cli-tx"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted-1")
    producer.produce(topic, value=b"aborted-2")
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)


async def test_read_committed_hides_aborted_transactions(broker: RunningBroker,
                                                         make_topic: Any) -> None:
    make_topic("tx", 1)
    await in_thread(confluent_transactions, broker.bootstrap, "tx")
    committed = await cli(broker, "consume", "tx", "--from-beginning", "--max-messages", "1",
                          "--isolation-level", "read_committed", "--print-offset")
    assert (committed.exit_code, committed.stdout) == (0, "Offset:3\tcommitted\n")
    everything = await cli(broker, "consume", "tx", "--from-beginning", "--max-messages", "3")
    assert everything.stdout == "aborted-1\naborted-2\ncommitted\n"
